"""Science frames whose reduction failed after its retries, with the reason.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightlog.catalogue.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reduce_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("inputs_key", sa.String(length=64), nullable=True),
        sa.Column("first_failed_at", UTCDateTime(), nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False),
        sa.Column("times_failed", sa.Integer(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["frame_id"], ["frames.id"],
                                name=op.f("fk_reduce_failures_frame_id_frames")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reduce_failures")),
        sa.UniqueConstraint("frame_id", name=op.f("uq_reduce_failures_frame_id")),
    )


def downgrade() -> None:
    op.drop_table("reduce_failures")
