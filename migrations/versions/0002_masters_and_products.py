"""Masters, their inputs, products and provenance links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightlog.catalogue.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "masters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("instrument", sa.String(length=80), nullable=True),
        sa.Column("setup_key", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("group", sa.JSON(), nullable=False),
        sa.Column("filter", sa.String(length=80), nullable=True),
        sa.Column("set_temp", sa.Float(), nullable=True),
        sa.Column("exptime", sa.Float(), nullable=True),
        sa.Column("is_rate", sa.Boolean(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("first_obs", UTCDateTime(), nullable=False),
        sa.Column("last_obs", UTCDateTime(), nullable=False),
        sa.Column("mid_time", UTCDateTime(), nullable=False),
        sa.Column("n_frames", sa.Integer(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("quality_reason", sa.Text(), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("valid_from", UTCDateTime(), nullable=True),
        sa.Column("valid_until", UTCDateTime(), nullable=True),
        sa.Column("certified_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"], ["masters.id"], name=op.f("fk_masters_superseded_by_id_masters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_masters")),
        sa.UniqueConstraint("group_key", "night", "version", name="uq_masters_group_night_version"),
    )
    op.create_index(op.f("ix_masters_group_key"), "masters", ["group_key"], unique=False)
    op.create_index(op.f("ix_masters_kind"), "masters", ["kind"], unique=False)
    op.create_index(
        "ix_masters_kind_instrument_mid",
        "masters",
        ["kind", "instrument", "mid_time"],
        unique=False,
    )
    op.create_index(
        "ix_masters_kind_instrument_valid",
        "masters",
        ["kind", "instrument", "valid_from"],
        unique=False,
    )
    op.create_index(
        "ix_masters_kind_group_mid", "masters", ["kind", "group_key", "mid_time"], unique=False
    )
    op.create_index(op.f("ix_masters_night"), "masters", ["night"], unique=False)
    op.create_table(
        "master_inputs",
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["frames.id"], name=op.f("fk_master_inputs_frame_id_frames")
        ),
        sa.ForeignKeyConstraint(
            ["master_id"],
            ["masters.id"],
            name=op.f("fk_master_inputs_master_id_masters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("master_id", "frame_id", name=op.f("pk_master_inputs")),
    )
    op.create_index(op.f("ix_master_inputs_frame_id"), "master_inputs", ["frame_id"], unique=False)
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("replaced_by_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("inputs_key", sa.String(length=64), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("missing_steps", sa.JSON(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["frames.id"], name=op.f("fk_products_frame_id_frames")
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"], ["products.id"], name=op.f("fk_products_replaced_by_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index("ix_products_frame_status", "products", ["frame_id", "status"], unique=False)
    op.create_index(op.f("ix_products_inputs_key"), "products", ["inputs_key"], unique=False)
    op.create_table(
        "product_masters",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("master_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["master_id"], ["masters.id"], name=op.f("fk_product_masters_master_id_masters")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_masters_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", "master_id", name=op.f("pk_product_masters")),
    )
    op.create_index(
        op.f("ix_product_masters_master_id"), "product_masters", ["master_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_product_masters_master_id"), table_name="product_masters")
    op.drop_table("product_masters")
    op.drop_index(op.f("ix_products_inputs_key"), table_name="products")
    op.drop_index("ix_products_frame_status", table_name="products")
    op.drop_table("products")
    op.drop_index(op.f("ix_master_inputs_frame_id"), table_name="master_inputs")
    op.drop_table("master_inputs")
    op.drop_index(op.f("ix_masters_night"), table_name="masters")
    op.drop_index("ix_masters_kind_group_mid", table_name="masters")
    op.drop_index("ix_masters_kind_instrument_mid", table_name="masters")
    op.drop_index("ix_masters_kind_instrument_valid", table_name="masters")
    op.drop_index(op.f("ix_masters_kind"), table_name="masters")
    op.drop_index(op.f("ix_masters_group_key"), table_name="masters")
    op.drop_table("masters")
