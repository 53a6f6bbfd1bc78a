"""Missing calibrations as a policy: multi-night and provisional masters, held frames.

Revision ID: 0013_policies
Revises: 0012_ccd
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightlog.catalogue.types import UTCDateTime

revision = "0013_policies"
down_revision = "0012_ccd"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("masters") as batch:
        for name in ("multi_night", "provisional"):
            batch.add_column(sa.Column(name, sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.create_table(
        "frame_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["frame_id"], ["frames.id"],
                                name=op.f("fk_frame_holds_frame_id_frames")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frame_holds")),
        sa.UniqueConstraint("frame_id", name=op.f("uq_frame_holds_frame_id")),
    )


def downgrade() -> None:
    op.drop_table("frame_holds")
    with op.batch_alter_table("masters") as batch:
        batch.drop_column("provisional")
        batch.drop_column("multi_night")
