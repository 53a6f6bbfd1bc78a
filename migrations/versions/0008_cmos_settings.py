"""CMOS camera settings of a frame: gain setting, offset and Bayer pattern.

A CMOS camera's GAIN card under N.I.N.A., SGP, APT or INDI is the gain *setting*
(and OFFSET the offset setting), not its e-/ADU; masters match frames only at the
same settings, so they are catalogued as columns that calibration keys can use.
A colour sensor's BAYERPAT is recorded beside them. Existing frames get NULL
(no setting known), which is what a CCD has.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("gain_setting", sa.Float(), nullable=True))
        batch.add_column(sa.Column("offset", sa.Float(), nullable=True))
        batch.add_column(sa.Column("bayer_pattern", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("bayer_pattern")
        batch.drop_column("offset")
        batch.drop_column("gain_setting")
