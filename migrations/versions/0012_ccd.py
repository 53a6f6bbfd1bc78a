"""The CCD of a mosaic's frame: one frame per CCD of a file holding several.

``frames.ccd`` names the CCD (null for a file of one detector). A file's path,
version and checksum are then shared by the rows of its CCDs, so the unique
constraints on ``(path, path_version)`` and ``sha256`` become two unique indexes
each: one among the rows without a CCD, one with the CCD among the others.

Downgrading refuses a catalogue that holds frames of a CCD (their rows would break
the old constraints): remove them first.

Revision ID: 0012_ccd
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightlog.catalogue.types import HeaderText

revision = "0012_ccd"
down_revision = "0011"
branch_labels = None
depends_on = None

_SINGLE = sa.text("ccd IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("ccd", HeaderText(80), nullable=True))
        batch.drop_constraint("uq_frames_path_version", type_="unique")
        batch.drop_constraint(batch.f("uq_frames_sha256"), type_="unique")
        batch.create_index("ux_frames_path_version", ["path", "path_version"], unique=True,
                           sqlite_where=_SINGLE, postgresql_where=_SINGLE)
        batch.create_index("ux_frames_path_version_ccd", ["path", "path_version", "ccd"],
                           unique=True)
        batch.create_index("ux_frames_sha256", ["sha256"], unique=True,
                           sqlite_where=_SINGLE, postgresql_where=_SINGLE)
        batch.create_index("ux_frames_sha256_ccd", ["sha256", "ccd"], unique=True)


def downgrade() -> None:
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT count(*) FROM frames WHERE ccd IS NOT NULL")).scalar()
    if held:
        raise RuntimeError(f"{held} frame(s) of a mosaic's CCD: the schema before 0012_ccd "
                           "cannot hold them; remove them before downgrading")
    with op.batch_alter_table("frames") as batch:
        for name in ("ux_frames_sha256_ccd", "ux_frames_sha256", "ux_frames_path_version_ccd",
                     "ux_frames_path_version"):
            batch.drop_index(name)
        batch.create_unique_constraint("uq_frames_path_version", ["path", "path_version"])
        batch.create_unique_constraint(batch.f("uq_frames_sha256"), ["sha256"])
        batch.drop_column("ccd")
