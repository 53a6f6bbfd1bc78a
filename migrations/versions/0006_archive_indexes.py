"""Indexes for an archive of years: products by path; frames by kind and time, ingest, state.

Recording a product looks its path up (a scan of every product without an index,
inside the write transaction); ``frames --kind --since`` walked every frame of the
kind (``ix_frames_kind``, which ``(kind, obs_time)`` replaces as its prefix); the
watch daemon's catch-up asks for the science frames ingested since it last ran;
``calib build`` asks which nights hold calibration frames in no master, answered
from an index that covers the question. Three indexes of frames that are the first
column of another (path, night, setup key) go: each insert paid for them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Indexes of frames whose column leads a composite index (which serves it).
_PREFIXES = {"ix_frames_path": "path", "ix_frames_night": "night",
             "ix_frames_setup_key": "setup_key"}


def upgrade() -> None:
    op.create_index("ix_products_path", "products", ["path"])
    op.create_index("ix_frames_kind_obs_time", "frames", ["kind", "obs_time"])
    op.drop_index("ix_frames_kind", table_name="frames")
    op.create_index("ix_frames_kind_ingested_at", "frames", ["kind", "ingested_at"])
    op.create_index("ix_frames_kind_status_latest_night", "frames",
                    ["kind", "status", "is_latest", "night"])
    for name in _PREFIXES:
        op.drop_index(name, table_name="frames")


def downgrade() -> None:
    for name, column in _PREFIXES.items():
        op.create_index(name, "frames", [column])
    op.drop_index("ix_frames_kind_status_latest_night", table_name="frames")
    op.drop_index("ix_frames_kind_ingested_at", table_name="frames")
    op.create_index("ix_frames_kind", "frames", ["kind"])
    op.drop_index("ix_frames_kind_obs_time", table_name="frames")
    op.drop_index("ix_products_path", table_name="products")
