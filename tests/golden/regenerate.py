"""Write the golden normalised headers of the real headers in tests/data.

Run from the repository root after a deliberate change of normalisation::

    python tests/golden/regenerate.py

then review every changed file against its header before committing: a golden
records what is right, not merely what the code produced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from astropy.io import fits

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
GOLDEN = ROOT / "tests" / "golden"


def header_files() -> list[Path]:
    """Every real header in tests/data: FITS files and text header dumps."""
    return sorted([*DATA.glob("*.fit"), *DATA.glob("*.hdr")])


def read_header(path: Path) -> fits.Header:
    """The primary header of a FITS file, or a text header dump (one card a line)."""
    if path.suffix == ".hdr":
        return fits.Header.fromtextfile(path)
    return fits.getheader(path)


def golden_path(path: Path) -> Path:
    return GOLDEN / f"{path.name}.json"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    return value


def record_for(path: Path) -> dict[str, Any]:
    """What the golden file of ``path`` holds: the matched profile's normalisation."""
    sys.path.insert(0, str(ROOT))
    from nightlog.header.normalize import normalize_header
    from nightlog.header.profiles import ProfileRegistry

    header = read_header(path)
    profile = ProfileRegistry.from_settings().match(header)
    norm = normalize_header(header, profile)
    fields = {f.name: _plain(getattr(norm, f.name)) for f in dataclasses.fields(norm)}
    return {"file": path.name, "normalized": fields}


def main() -> None:
    for path in header_files():
        text = json.dumps(record_for(path), indent=2, ensure_ascii=False) + "\n"
        target = golden_path(path)
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
