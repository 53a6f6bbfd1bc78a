"""The amplifiers of a multi-amplifier (MEF) frame, one JSON value per frame.

A CCD read through several amplifiers and written as one image extension per
amplifier is catalogued as one frame whose shape is the assembled detector's;
which extension holds which amplifier, its sections, gain, read noise and
saturation are kept here so that masters and products are built from every
amplifier. ``NULL`` for a single-image frame.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("amplifiers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("amplifiers")
