"""The calibration frames waiting for a master: ``calib build`` over years of frames.

``calib build`` and the daemon start from the nights with calibration frames that
no master lists among its inputs; asked of the frames, that walked every
calibration frame (half a million after ten years, each already in a master) and
probed the masters' inputs for each. ``awaiting_masters`` holds a row per
calibration frame no master considered yet, kept as frames and masters are
recorded, and is filled here, in one statement, from the frames and masters'
inputs already catalogued.

Revision ID: 0016_awaiting_masters
Revises: 0015_tally_groups
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_awaiting_masters"
down_revision = "0015_tally_groups"
branch_labels = None
depends_on = None

#: The kinds a master is built of (those of 2026-12; written out, as a migration must
#: not follow later code).
_KINDS = ("bias", "dark", "flat")


def upgrade() -> None:
    op.create_table(
        "awaiting_masters",
        sa.Column("frame_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["frame_id"], ["frames.id"],
                                name=op.f("fk_awaiting_masters_frame_id_frames")),
        sa.PrimaryKeyConstraint("frame_id", name=op.f("pk_awaiting_masters")),
    )
    op.create_index(op.f("ix_awaiting_masters_night"), "awaiting_masters", ["night"])
    frames = sa.table("frames", sa.column("id"), sa.column("night"), sa.column("kind"))
    inputs = sa.table("master_inputs", sa.column("frame_id"))
    waiting = sa.table("awaiting_masters", sa.column("frame_id"), sa.column("night"),
                       sa.column("kind"))
    considered = sa.select(inputs.c.frame_id).where(inputs.c.frame_id == frames.c.id)
    op.execute(waiting.insert().from_select(
        ["frame_id", "night", "kind"],
        sa.select(frames.c.id, frames.c.night, frames.c.kind)
        .where(frames.c.kind.in_(_KINDS), ~considered.exists())))


def downgrade() -> None:
    op.drop_index(op.f("ix_awaiting_masters_night"), table_name="awaiting_masters")
    op.drop_table("awaiting_masters")
