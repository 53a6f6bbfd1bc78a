"""Frames and quarantined files.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightlog.catalogue.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("path_version", sa.Integer(), nullable=False),
        sa.Column("is_latest", sa.Boolean(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", UTCDateTime(), nullable=False),
        sa.Column("hdu", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("raw_type", sa.Text(), nullable=True),
        sa.Column("exptime", sa.Float(), nullable=True),
        sa.Column("filter", sa.String(length=80), nullable=True),
        sa.Column("obs_time", UTCDateTime(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("instrument", sa.String(length=80), nullable=True),
        sa.Column("detector", sa.String(length=80), nullable=True),
        sa.Column("binning", sa.String(length=16), nullable=False),
        sa.Column("readout_mode", sa.String(length=80), nullable=True),
        sa.Column("object_name", sa.Text(), nullable=True),
        sa.Column("gain", sa.Float(), nullable=True),
        sa.Column("read_noise", sa.Float(), nullable=True),
        sa.Column("ccd_temp", sa.Float(), nullable=True),
        sa.Column("set_temp", sa.Float(), nullable=True),
        sa.Column("saturation", sa.Float(), nullable=True),
        sa.Column("naxis1", sa.Integer(), nullable=False),
        sa.Column("naxis2", sa.Integer(), nullable=False),
        sa.Column("datasec", sa.String(length=80), nullable=True),
        sa.Column("trimsec", sa.String(length=80), nullable=True),
        sa.Column("biassec", sa.String(length=80), nullable=True),
        sa.Column("ccdsec", sa.String(length=80), nullable=True),
        sa.Column("setup_key", sa.Text(), nullable=False),
        sa.Column("header", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frames")),
        sa.UniqueConstraint("path", "path_version", name="uq_frames_path_version"),
        sa.UniqueConstraint("sha256", name=op.f("uq_frames_sha256")),
    )
    with op.batch_alter_table("frames") as batch:
        batch.create_index(batch.f("ix_frames_path"), ["path"])
        batch.create_index(batch.f("ix_frames_kind"), ["kind"])
        batch.create_index(batch.f("ix_frames_filter"), ["filter"])
        batch.create_index(batch.f("ix_frames_obs_time"), ["obs_time"])
        batch.create_index(batch.f("ix_frames_night"), ["night"])
        batch.create_index(batch.f("ix_frames_instrument"), ["instrument"])
        batch.create_index(batch.f("ix_frames_setup_key"), ["setup_key"])
        batch.create_index("ix_frames_night_kind", ["night", "kind"])
        batch.create_index("ix_frames_setup_kind_obs", ["setup_key", "kind", "obs_time"])

    op.create_table(
        "quarantined_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("error", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_files")),
        sa.UniqueConstraint("path", name=op.f("uq_quarantined_files_path")),
    )


def downgrade() -> None:
    op.drop_table("quarantined_files")
    with op.batch_alter_table("frames") as batch:
        for name in ("ix_frames_setup_kind_obs", "ix_frames_night_kind"):
            batch.drop_index(name)
        for col in ("setup_key", "instrument", "night", "obs_time", "filter", "kind", "path"):
            batch.drop_index(batch.f(f"ix_frames_{col}"))
    op.drop_table("frames")
