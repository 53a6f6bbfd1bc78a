"""The per-night tally of frames that ``nightlog nights`` reads (an archive of years).

``nights`` over ten years grouped every latest frame (a million rows) on each call;
the tally holds one row per night, kind, filter and exposure time, kept as frames
are recorded, and is filled here from the frames already catalogued.

Revision ID: 0014_night_tallies
Revises: 0013_policies
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightlog.catalogue.types import HeaderText

revision = "0014_night_tallies"
down_revision = "0013_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "night_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filter", HeaderText(80), nullable=True),
        sa.Column("exptime", sa.Float(), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_night_tallies")),
    )
    op.create_index("ix_night_tallies_night_kind", "night_tallies", ["night", "kind"])
    frames = sa.table("frames", sa.column("night"), sa.column("kind"), sa.column("filter"),
                      sa.column("exptime"), sa.column("is_latest", sa.Boolean()),
                      sa.column("id"))
    tallies = sa.table("night_tallies", sa.column("night"), sa.column("kind"),
                       sa.column("filter"), sa.column("exptime"), sa.column("frames"))
    counted = (sa.select(frames.c.night, frames.c.kind, frames.c.filter, frames.c.exptime,
                         sa.func.count(frames.c.id))
               .where(frames.c.is_latest.is_(True))
               .group_by(frames.c.night, frames.c.kind, frames.c.filter, frames.c.exptime))
    op.execute(tallies.insert().from_select(
        ["night", "kind", "filter", "exptime", "frames"], counted))


def downgrade() -> None:
    op.drop_index("ix_night_tallies_night_kind", table_name="night_tallies")
    op.drop_table("night_tallies")
