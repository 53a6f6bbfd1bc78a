"""The night report: one self-contained page, checked by parsing it and in Chromium.

The demo archive gets a science frame whose OBJECT is a script tag, a file that
is not FITS (quarantined) and a quarantine reason that is markup; the page must
show every science frame, master, count and quarantined file, load nothing from
anywhere, embed only PNG data URIs, and show the hostile strings as text.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sqlalchemy import select
from typer.testing import CliRunner

from nightlog.cli.app import app
from nightlog.report.thumbnails import bin_to_fit, zscale_thumbnail

HOSTILE_OBJECT = "<script>alert(1)</script>"
HOSTILE_REASON = "<script>alert(3)</script> \"quoted\" & 'single' <img src=x onerror=alert(4)>"
HOSTILE_NAME = "x\"><img src=y onerror=alert(2)>.fits"
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p",
                "div", "b", "span", "table", "tr", "th", "td", "img", "figure",
                "figcaption", "br", "a", "label", "input",
                # the inline SVG timeline
                "svg", "rect", "text", "polyline", "circle", "line"}


class _Page(HTMLParser):
    """Tags, images, text and tables of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.images: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.extend((tag, k, v) for k, v in attrs)
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append([])
        elif tag == "tr" and self._depth == 1:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self._depth == 1:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._depth == 1:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, first_header: str) -> list[list[str]]:
        for t in self.tables:
            if t and t[0] and t[0][0] == first_header:
                return t[1:]
        raise AssertionError(f"no table starting with {first_header!r}")


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def _png_size(src: str) -> tuple[int, int]:
    from matplotlib.image import imread

    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(data), format="png")
    return pixels.shape[1], pixels.shape[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("report") / "nightlog-demo"
    result = CliRunner().invoke(app, ["demo", str(where), "--scale", "0.1"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "science frames reduced: 8 of 8" in result.output
    assert f"night report: {where / 'reports'}" in result.output
    return where


def _cli(where: Path, *args: str, code: int = 0) -> str:
    cwd = os.getcwd()
    os.chdir(where)
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300",
                                                          "NIGHTLOG_CONFIG": None,
                                                          "NIGHTLOG_DATABASE_URL": None})
    finally:
        os.chdir(cwd)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def hostile(demo: Path) -> dict[str, str]:
    """The demo with a hostile science frame and quarantined files; its report before and
    after reducing that frame."""
    from nightlog.catalogue.engine import create_engine, make_sessionmaker
    from nightlog.catalogue.frames import latest_by_path
    from nightlog.catalogue.quarantine import record_quarantined
    from nightlog.catalogue.reductions import record_failure

    raw = demo / "raw"
    source = sorted(p for p in raw.glob("*.fits")
                    if fits.getheader(p).get("IMAGETYP") == "OBJECT")[0]
    with fits.open(source) as hdus:
        hdus[0].header["OBJECT"] = HOSTILE_OBJECT
        hdus.writeto(raw / "hostile.fits")
    (raw / HOSTILE_NAME).write_bytes(b"this is not a FITS file\n" * 10)
    _cli(demo, "ingest", "raw", code=3)  # the hostile name is quarantined
    engine = create_engine(f"sqlite:///{demo / 'nightlog.sqlite'}")
    with make_sessionmaker(engine)() as session, session.begin():
        record_quarantined(session, str(demo / "raw" / "evil.fits"), reason=HOSTILE_REASON,
                           error="NotFitsError")
        frame = latest_by_path(session, str(raw / "hostile.fits"))
        assert frame is not None
        record_failure(session, frame.id, kind="final", attempts=3, error="ReductionError",
                       reason=f"disk gone {HOSTILE_REASON}", software_version="test")
    engine.dispose()
    before = Path(_cli(demo, "report", "--output", str(demo / "before.html")).strip())
    _cli(demo, "reduce")
    after = Path(_cli(demo, "report").strip())
    assert after.parent == demo / "reports" and after.suffix == ".html"
    return {"before": before.read_text(encoding="utf-8"),
            "after": after.read_text(encoding="utf-8"), "path": str(after)}


def test_every_science_frame_master_and_count(demo: Path, hostile: dict[str, str]) -> None:
    page = _parse(hostile["after"])
    text = "".join(page.text)
    science = json.loads(_cli(demo, "frames", "--kind", "science", "--oldest-first",
                                "--format", "json"))
    assert len(science) == 9
    rows = page.table("frame")
    assert len(rows) == len(science)
    for frame, row in zip(science, rows, strict=True):
        assert row[0].startswith(f"frame {frame['id']} ")
        assert frame["path"] in row[0]
        assert row[3].startswith("product ")  # every frame has its final product
    masters = json.loads(_cli(demo, "calib", "list", "--format", "json"))
    shown = [t for tag, k, t in page.attrs if tag == "div" and k == "id"]
    assert sorted(shown) == sorted(f"master-{m['id']}" for m in masters)
    for m in masters:
        assert f"{m['kind']} master {m['id']} v{m['version']}" in text
    counts = Counter()
    for row in json.loads(_cli(demo, "nights", "--format", "json")):
        counts[(row["kind"], row["filter"] or "–")] += row["count"]
    table = page.table("kind")
    assert {(r[0], r[1]): int(r[2]) for r in table} == dict(counts)
    # Each statistic is set beside the history median, with a verdict.
    stats = page.table("statistic")
    assert stats and all(r[5] in ("not judged", "within the history", "outlier") for r in stats)


def test_quarantined_files_and_reasons(demo: Path, hostile: dict[str, str]) -> None:
    page = _parse(hostile["after"])
    rows = page.table("what")  # reduction problems show a paragraph: this is quarantine
    listed = json.loads(_cli(demo, "quarantine", "--format", "json"))
    assert len(listed) == 2 and len(rows) == 2
    for q in listed:
        assert [q["error"], q["path"], " ".join(q["reason"].split())] in [r[:3] for r in rows]
    assert any(HOSTILE_NAME in r[1] for r in rows)


def test_failed_reductions_are_listed_until_reduced(hostile: dict[str, str]) -> None:
    before = _parse(hostile["before"])
    problems = before.tables[-2][1:]  # reduction problems, then quarantine
    assert len(problems) == 1 and problems[0][1].endswith("hostile.fits")
    assert "final reduction failed (3 tries" in problems[0][0]
    assert problems[0][2] == "ReductionError: disk gone " + " ".join(HOSTILE_REASON.split())
    assert "every science frame has a current product" in "".join(_parse(hostile["after"]).text)


def test_frames_without_product_are_listed(demo: Path, tmp_path: Path) -> None:
    from nightlog.catalogue.engine import create_engine, make_sessionmaker
    from nightlog.catalogue.models import Frame, Product
    from nightlog.coordinator.context import JobContext
    from nightlog.coordinator.night_report import build_report
    from nightlog.settings import load_settings

    settings = load_settings(demo / "nightlog.toml")
    engine = create_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            frame = session.scalars(select(Frame).where(Frame.kind == "science")
                                    .order_by(Frame.id).limit(1)).one()
            for p in session.scalars(select(Product).where(Product.frame_id == frame.id)):
                p.status = "replaced"  # not committed: the report sees it, nothing keeps it
            session.flush()
            report = build_report(session, JobContext.from_settings(settings), frame.night,
                                  with_trends=False)
            path = frame.path
            session.rollback()
    finally:
        engine.dispose()
    assert [(p.path, p.reason[:10]) for p in report.failures] == [(path, "no product")]


@pytest.mark.parametrize("which", ["before", "after"])
def test_self_contained_and_only_png_data(hostile: dict[str, str], which: str) -> None:
    raw = hostile[which]
    for forbidden in ('src="http', "src='http", 'href="http', "<link", "<script", "url(",
                      "@import", "<iframe", "<object"):
        assert forbidden not in raw.lower()
    page = _parse(raw)
    assert set(page.tags) <= ALLOWED_TAGS, set(page.tags) - ALLOWED_TAGS
    assert not [a for _, a, _ in page.attrs if a.startswith("on")]
    hrefs = [v for tag, k, v in page.attrs if k == "href"]
    assert hrefs and all(h is not None and h.startswith("#master-") for h in hrefs)
    assert page.images
    for img in page.images:
        width, height = _png_size(str(img["src"]))
        if img.get("width") is not None:
            assert (int(str(img["width"])), int(str(img["height"]))) == (width, height)
            assert max(width, height) <= 256


def test_hostile_strings_are_text(hostile: dict[str, str]) -> None:
    raw = hostile["after"]
    page = _parse(raw)
    text = "".join(page.text)
    assert f"object: {HOSTILE_OBJECT}" in text
    assert " ".join(HOSTILE_REASON.split()) in " ".join(text.split())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert "onerror=alert" not in [v for _, _, v in page.attrs]
    assert page.tags["img"] == len(page.images)


def test_every_thumbnail_is_there(demo: Path, hostile: dict[str, str]) -> None:
    page = _parse(hostile["after"])
    masters = json.loads(_cli(demo, "calib", "list", "--format", "json"))
    kinds = {m["kind"] for m in masters}
    science = 9
    # a master each, raw and final per science frame, a history plot per kind
    assert len(page.images) == len(masters) + 2 * science + len(kinds)


def test_report_of_an_empty_night_is_an_error(demo: Path) -> None:
    out = _cli(demo, "report", "--night", "2001-01-01", code=4)
    assert "no frame of the night of 2001-01-01" in out


# -- thumbnails -------------------------------------------------------------------------

def _block_mean_reference(data: np.ndarray, factor: int) -> np.ndarray:
    ny, nx = -(-data.shape[0] // factor), -(-data.shape[1] // factor)
    out = np.full((ny, nx), np.nan)
    for j in range(ny):
        for i in range(nx):
            block = data[j * factor:(j + 1) * factor, i * factor:(i + 1) * factor]
            finite = block[np.isfinite(block)]
            if finite.size:
                out[j, i] = finite.mean()
    return out


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 40)),
              elements=st.floats(-1e6, 1e6) | st.just(np.nan)),
       st.integers(1, 12))
def test_binning_is_the_block_mean_of_finite_pixels(data: np.ndarray, max_size: int) -> None:
    factor = max(1, -(-max(data.shape) // max_size))
    got = bin_to_fit(data, max_size)
    assert max(got.shape) <= max_size
    np.testing.assert_allclose(got, _block_mean_reference(data, factor), rtol=1e-12,
                               atol=1e-9, equal_nan=True)


def test_thumbnail_survives_a_hot_pixel() -> None:
    from matplotlib.image import imread

    rng = np.random.default_rng(1)
    image = rng.normal(1000.0, 10.0, (600, 300))
    image[300, 150] = 1e9
    thumb = zscale_thumbnail(image)
    assert (thumb.width, thumb.height) == (100, 200)
    pixels = imread(io.BytesIO(thumb.png), format="png")[..., 0]
    assert pixels.shape == (200, 100)
    # The noise stays visible around mid-grey: one hot pixel does not set the stretch.
    assert 0.3 < float(np.median(pixels)) < 0.7
    assert float(pixels.std()) > 0.1


def test_thumbnail_draws_row_0_at_the_bottom() -> None:
    from matplotlib.image import imread

    image = np.repeat(np.arange(100.0)[:, None], 50, axis=1)  # value grows with the row
    pixels = imread(io.BytesIO(zscale_thumbnail(image).png), format="png")[..., 0]
    assert pixels[-1].mean() < 0.1 and pixels[0].mean() > 0.9


def test_thumbnail_of_nothing_finite_is_black() -> None:
    thumb = zscale_thumbnail(np.full((10, 20), np.nan))
    assert (thumb.width, thumb.height) == (20, 10)
    with pytest.raises(ValueError):
        zscale_thumbnail(np.zeros(5))


# -- in a browser -------------------------------------------------------------------------

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_the_page_in_headless_chromium(hostile: dict[str, str], tmp_path: Path) -> None:
    from matplotlib.image import imread

    browser = _chromium()
    if browser is None:
        reason = "no chromium on PATH (apt-get install chromium; .ci/run does)"
        if os.environ.get("NIGHTLOG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NIGHTLOG_REQUIRE_BROWSER=1 but {reason}")
        print(reason)
        pytest.skip(reason)
    url = Path(hostile["path"]).resolve().as_uri()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    run = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2000", url],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    print(f"screenshot of the night report: {shot}")
    if os.environ.get("NIGHTLOG_DOCS_SCREENSHOTS") == "1":  # the picture in docs/report.md
        docs_images = Path(__file__).resolve().parent.parent / "docs" / "images"
        docs_images.mkdir(exist_ok=True)
        shutil.copyfile(shot, docs_images / "report.png")
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert float(pixels.var()) > 0.001
    dark = (pixels.mean(axis=2) < 0.3).mean()
    assert dark > 0.01  # text, table lines and thumbnails, not a blank page
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _parse(dom.stdout)
    assert len(parsed.images) == len(_parse(hostile["after"]).images)
    assert all(str(i["src"]).startswith("data:image/png;base64,") for i in parsed.images)
    assert "script" not in parsed.tags
    assert f"object: {HOSTILE_OBJECT}" in "".join(parsed.text)
