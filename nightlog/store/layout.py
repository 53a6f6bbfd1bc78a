"""Where archive files live: a predictable layout under the archive root.

::

    <root>/masters/<instrument>/<kind>/<night>/<kind>_<night>_<group>_v<version>.fits
    <root>/products/<instrument>/<night>/<raw stem>_<product kind>_<id>.fits
    <root>/reports/<night>.html

Every part that comes from a header (instrument, raw file stem) is reduced to a
safe slug (letters, digits, ``.``, ``_``, ``-``; at most 60 characters), so nothing
derived from a header can escape the archive root or name a hidden file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import stat
import uuid
from pathlib import Path

from nightlog.errors import StoreError

__all__ = ["ArchiveLayout", "name_beside", "slug"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def name_beside(path: Path) -> Path:
    """A new name next to ``path`` for a file that must not replace the one there
    (the time, to the microsecond, and a random part keep concurrent writers apart)."""
    suffix = ".fits.fz" if path.name.lower().endswith(".fits.fz") else path.suffix
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f"{stem}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}_"
                          f"{uuid.uuid4().hex[:6]}{suffix}")


def slug(text: str | None, *, default: str = "unknown", limit: int = 60) -> str:
    """A file-name-safe form of ``text`` (never empty, never starting with a dot)."""
    if not text:
        return default
    cleaned = _UNSAFE.sub("-", text.strip()).strip("-.")
    if not cleaned:
        return default
    if len(cleaned) > limit:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned[: limit - 9]}-{digest}"
    return cleaned


class ArchiveLayout:
    """Paths of masters, products and night reports under ``root``; masters and
    products end in ``.fits.fz`` (tile-compressed) when ``compress`` is set."""

    def __init__(self, root: Path, *, compress: bool = False) -> None:
        self.root = Path(root).resolve()
        self.suffix = ".fits.fz" if compress else ".fits"

    def file_mode(self) -> int:
        """Permission bits of the archive's files: those of the root for reading,
        never writable by others (``0o755`` gives ``0o644``, ``0o750`` gives
        ``0o640``); ``0o644`` while the root does not exist yet."""
        try:
            root_mode = stat.S_IMODE(self.root.stat().st_mode)
        except OSError:
            return 0o644
        return root_mode & 0o666 & ~0o002

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if self.root not in resolved.parents:
            raise StoreError(f"refusing a path outside the archive root {self.root}: {path}")
        return path

    def master_path(self, *, instrument: str | None, kind: str, night: dt.date,
                    group_key: str, version: int) -> Path:
        """Path of a master file (the group key is shortened to a stable digest)."""
        digest = hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        name = f"{slug(kind)}_{night.isoformat()}_{digest}_v{version}{self.suffix}"
        return self._inside(self.root / "masters" / slug(instrument) / slug(kind)
                            / night.isoformat() / name)

    def product_path(self, *, instrument: str | None, night: dt.date, raw_name: str,
                     product_kind: str, product_key: str, ccd: str | None = None) -> Path:
        """Path of a reduced product of a raw file (of one CCD of it, for a mosaic:
        the CCD's name follows the raw file's)."""
        stem = raw_name
        for suffix in (".gz", ".fz", ".fits", ".fit", ".fts"):
            stem = stem.removesuffix(suffix) if stem.lower().endswith(suffix) else stem
        if ccd is not None:
            stem = f"{stem}_{slug(ccd, limit=32)}"
        name = f"{slug(stem)}_{slug(product_kind)}_{product_key[:10]}{self.suffix}"
        return self._inside(self.root / "products" / slug(instrument) / night.isoformat()
                            / name)

    def report_path(self, night: dt.date) -> Path:
        """Path of the HTML report of a night."""
        return self._inside(self.root / "reports" / f"{night.isoformat()}.html")
