"""The night tally indexed by its groups: ``nights`` over ten years without a sort.

``nightlog nights --limit 0`` and the month and year summaries sum the tally per
night, kind, filter and exposure time; ``ix_night_tallies_night_kind`` served the
nights but left the grouping to a sort of every row (twenty thousand after ten
years). The index of the whole group key gives the groups in night order, and
still serves the writers' look-up of a group's row.

Revision ID: 0015_tally_groups
Revises: 0014_night_tallies
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0015_tally_groups"
down_revision = "0014_night_tallies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_night_tallies_group", "night_tallies",
                    ["night", "kind", "filter", "exptime"])
    op.drop_index("ix_night_tallies_night_kind", table_name="night_tallies")


def downgrade() -> None:
    op.create_index("ix_night_tallies_night_kind", "night_tallies", ["night", "kind"])
    op.drop_index("ix_night_tallies_group", table_name="night_tallies")
