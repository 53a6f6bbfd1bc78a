"""Hostile file and folder names through the whole main job: ingest, masters,
reduction, the products' PROVENANCE tables and keywords, ``nightlog provenance
--verify`` and the night report. A name is data: it is stored and shown exactly
(escaped where a format needs it), it never decides where a product goes, and
nothing is executed or breaks on it. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from astropy.io import fits
from sqlalchemy import select
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product
from nightlog.cli.app import app
from nightlog.reduction._cards import fits_text

# Folder and file names a camera computer or a user could make; none may be used as
# anything but a name. ('/' and NUL are the only bytes a POSIX name cannot hold.)
FOLDER = "night \"07\" <script>alert(1)</script> $(touch pwned) 'é' ü; rm -rf \\ %s {0}"
PREFIX = "M31 «core» & <img src=x onerror=alert(2)> \x1b[31m`id` "


class _Text(HTMLParser):
    """The text a browser shows, and whether any script element exists."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def hostile_night(lfc_night: Path, tmp_path: Path) -> Path:
    """The small LFC night in a hostile folder, science files renamed hostilely."""
    raw = tmp_path / FOLDER
    shutil.copytree(lfc_night, raw)
    for path in sorted(raw.rglob("*.fits")):
        with fits.open(path) as hdus:
            kind = str(hdus[0].header.get("IMAGETYP", ""))
        if "object" in kind.lower() or "light" in kind.lower():
            path.rename(path.with_name(PREFIX + path.name))
    return raw


def test_hostile_names_through_reduction_provenance_and_report(
        runner: CliRunner, hostile_night: Path, tmp_path: Path, catalogue_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", catalogue_url)
    science = sorted(p for p in hostile_night.rglob("*.fits") if p.name.startswith(PREFIX))
    assert science, "the night has science frames"

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("ingest", str(hostile_night))
    ok("reduce")
    engine = create_engine(catalogue_url)
    try:
        with make_sessionmaker(engine)() as s:
            products = list(s.scalars(select(Product).where(Product.status == "current")))
            raw_of = {p.id: s.get(Frame, p.frame_id) for p in products}
            masters = list(s.scalars(select(Master)))
    finally:
        engine.dispose()
    assert len(products) == len(science) and masters
    assert {f.path for f in raw_of.values() if f is not None} == {str(p) for p in science}

    root = tmp_path.resolve()
    for made in [*(Path(p.path).resolve() for p in products),
                 *(Path(m.path).resolve() for m in masters)]:
        assert made.is_relative_to(root / "products") or \
            made.is_relative_to(root / "masters"), made
        inside = str(made.relative_to(root))
        assert "pwned" not in inside and "<" not in inside and FOLDER not in inside
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()

    for product in products:
        raw = raw_of[product.id]
        assert raw is not None
        # The file's own record: ASCII as FITS requires, the exact name escaped.
        with fits.open(product.path) as hdus:
            table = hdus["PROVENANCE"].data
            rows = {str(r["STEP"]): str(r["PATH"]) for r in table}
            assert rows["raw"] == fits_text(raw.path)
            assert all(text.isascii() and text.isprintable() for text in rows.values())
        # The catalogue's record, and the check against the files' bytes.
        tree = json.loads(ok("provenance", str(product.id), "--verify", "--format", "json"))
        assert tree["raw"]["path"] == raw.path
        assert tree["verification"]["problems"] == []
        inputs = [i["path"] for m in tree["masters"] for i in m["inputs"]]
        assert all(path.startswith(str(hostile_night)) for path in inputs)
        shown = ok("provenance", str(product.id))
        assert "\x1b" not in shown and "M31 «core»" in shown.replace("\n", "")

    ok("report", "--output", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    parsed = _Text()
    parsed.feed(page)
    assert parsed.scripts == 0  # the folder's <script> is text, not an element
    assert "<img src=x" not in page and "<script>alert(1)" not in page
    shown = "".join(parsed.text)
    assert "M31 «core» & <img src=x onerror=alert(2)>" in shown  # shown as text
