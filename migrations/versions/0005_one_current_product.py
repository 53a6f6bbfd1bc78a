"""At most one current product per frame (a unique partial index).

Two runs recording the same frame at once take turns on the frame's row; this
index makes a second current product impossible whatever the code path.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_products_current_frame", "products", ["frame_id"], unique=True,
                    sqlite_where=sa.text("status = 'current'"),
                    postgresql_where=sa.text("status = 'current'"))


def downgrade() -> None:
    op.drop_index("uq_products_current_frame", table_name="products")
