"""Subarray frames: the window of the full readout a frame, or a master's inputs, cover.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("frames", "masters"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("window", sa.String(length=80), nullable=True))


def downgrade() -> None:
    for table in ("frames", "masters"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("window")
