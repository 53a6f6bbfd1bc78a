"""The quality figures of each science product and the quality rules' verdict.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightlog.catalogue.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "frame_quality",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("sky", sa.Float(), nullable=True),
        sa.Column("sky_noise", sa.Float(), nullable=True),
        sa.Column("sky_e", sa.Float(), nullable=True),
        sa.Column("sky_noise_e", sa.Float(), nullable=True),
        sa.Column("n_sources", sa.Integer(), nullable=True),
        sa.Column("n_psf_stars", sa.Integer(), nullable=True),
        sa.Column("fwhm_px", sa.Float(), nullable=True),
        sa.Column("fwhm_scatter_px", sa.Float(), nullable=True),
        sa.Column("fwhm_arcsec", sa.Float(), nullable=True),
        sa.Column("ellipticity", sa.Float(), nullable=True),
        sa.Column("saturated_fraction", sa.Float(), nullable=True),
        sa.Column("cosmic_ray_pixels", sa.Integer(), nullable=True),
        sa.Column("airmass", sa.Float(), nullable=True),
        sa.Column("airmass_source", sa.Text(), nullable=True),
        sa.Column("pixel_scale_arcsec", sa.Float(), nullable=True),
        sa.Column("pixel_scale_source", sa.Text(), nullable=True),
        sa.Column("masters", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("judged_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["frame_id"], ["frames.id"],
                                name=op.f("fk_frame_quality_frame_id_frames")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="CASCADE",
                                name=op.f("fk_frame_quality_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frame_quality")),
        sa.UniqueConstraint("product_id", name=op.f("uq_frame_quality_product_id")),
    )
    op.create_index(op.f("ix_frame_quality_frame_id"), "frame_quality", ["frame_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_frame_quality_frame_id"), table_name="frame_quality")
    op.drop_table("frame_quality")
