"""Hostile input: header values are data, never code or paths; odd files are skipped.

The raw files here are written card by card, byte for byte, so they hold exactly
what a broken camera would write (NUL bytes, escape sequences, Latin-1 bytes) and
astropy gets no chance to tidy them. Every case runs on SQLite and PostgreSQL.
The list of cases and their tests is in ``docs/hardening.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import html.parser
import io
import json
import os
import threading
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.cli.app import app
from nightlog.cli.output import printable
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.night_report import build_report
from nightlog.header.values import text_value
from nightlog.report.html import render_html
from nightlog.settings import load_settings
from nightlog.store.layout import ArchiveLayout
from tests.factories import catalogued_frames as _frames
from tests.factories import quarantined_by_name as _quarantine

PATTERNS = load_settings(env={}, cwd=Path("/")).ingest.patterns
NIGHT = dt.date(2024, 3, 9)  # DATE-OBS 2024-03-10T04:05:06 UTC, no site: noon-to-noon UTC


# -- raw files, card by card ------------------------------------------------------------

def card(key: str, field: bytes) -> bytes:
    """One 80-byte card ``KEY     = field`` exactly as given (no escaping, no checks)."""
    image = key.encode("ascii").ljust(8) + b"= " + field
    assert len(image) <= 80, image
    return image.ljust(80, b" ")


def string_field(value: bytes) -> bytes:
    """A FITS string literal of raw bytes (quotes doubled, as the standard says)."""
    return b"'" + value.replace(b"'", b"''") + b"'"


BASE: dict[str, bytes] = {
    "INSTRUME": string_field(b"TESTCAM"),
    "IMAGETYP": string_field(b"LIGHT"),
    "EXPTIME": b"30.0".rjust(20),
    "FILTER": string_field(b"R"),
    "DATE-OBS": string_field(b"2024-03-10T04:05:06"),
    "OBJECT": string_field(b"M 101"),
}


def write_raw(path: Path, seed: int = 0, *, extra: tuple[bytes, ...] = (),
              **fields: bytes | None) -> Path:
    """A small 16-bit frame whose header cards are ``BASE`` overridden by ``fields``
    (keyword with ``-`` written ``_``; ``None`` leaves the card out), then ``extra``
    cards, byte for byte."""
    values = {**BASE, **{k.replace("_", "-"): v for k, v in fields.items()}}
    cards = [card("SIMPLE", b"T".rjust(20)), card("BITPIX", b"16".rjust(20)),
             card("NAXIS", b"2".rjust(20)), card("NAXIS1", b"8".rjust(20)),
             card("NAXIS2", b"6".rjust(20))]
    cards += [card(k, v) for k, v in values.items() if v is not None]
    cards += [*extra, b"END".ljust(80)]
    header = b"".join(cards)
    header = header.ljust(-(-len(header) // 2880) * 2880, b" ")
    rng = np.random.default_rng(seed)
    data = rng.integers(900, 1100, (6, 8)).astype(">i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + data.ljust(2880, b"\0"))
    return path


#: (id, bytes inside the string literal, the string the reader gives)
HOSTILE_STRINGS: list[tuple[str, bytes, str]] = [
    ("traversal", b"../../etc/x", "../../etc/x"),
    ("absolute", b"/etc/passwd", "/etc/passwd"),
    ("script", b"<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("markup", b"<img src=x onerror=alert(2)>", "<img src=x onerror=alert(2)>"),
    ("quotes", b"it's \"quoted\" & ''", "it's \"quoted\" & ''"),
    ("sql", b"x'); DROP TABLE frames; --", "x'); DROP TABLE frames; --"),
    ("nul", b"M3\x001", "M3\x001"),
    ("ansi", b"\x1b[2J\x1b[31mred\x1b[0m", "\x1b[2J\x1b[31mred\x1b[0m"),
    ("bell-backspace", b"ab\x07\x08c", "ab\x07\x08c"),
    ("rich-markup", b"[bold red]M 1[/]", "[bold red]M 1[/]"),
    ("csv-formula", b"=HYPERLINK(\"x\"),1", "=HYPERLINK(\"x\"),1"),
    ("68-chars", b"A" * 66 + b"Z", "A" * 66 + "Z"),  # 67 characters: the card is full
    # Non-ASCII bytes are not FITS: the reader decodes each as U+FFFD.
    ("latin-1", b"caf\xe9 \xb0C", "caf\ufffd \ufffdC"),
    ("utf-8", "Ångström".encode(), "\ufffd\ufffdngstr\ufffd\ufffdm"),
    ("pipe-and-backslash", b"a|b\\c", "a|b\\c"),
]
HOSTILE_IDS = [case[0] for case in HOSTILE_STRINGS]


def _ctx(tmp_path: Path, **overrides: object) -> IngestContext:
    return IngestContext.from_settings(load_settings(env={}, cwd=tmp_path), **overrides)


def _header_values(frame: Frame, keyword: str) -> list[object]:
    return [value for key, value, _ in frame.header if key == keyword]


def _hostile_folder(folder: Path) -> dict[str, str]:
    """One frame per hostile string, in OBJECT, FILTER and INSTRUME at once."""
    expected = {}
    for i, (name, raw, read) in enumerate(HOSTILE_STRINGS):
        field = string_field(raw)
        write_raw(folder / f"{name}.fits", seed=i, OBJECT=field, FILTER=field, INSTRUME=field)
        expected[f"{name}.fits"] = read
    return expected


# -- header strings: catalogued exactly, on both backends ------------------------------------

def test_hostile_strings_are_catalogued_exactly(catalogue_engine: Engine,
                                                tmp_path: Path) -> None:
    expected = _hostile_folder(tmp_path / "raw")
    summary = run_ingest(catalogue_engine, discover([tmp_path / "raw"], PATTERNS),
                         _ctx(tmp_path))
    assert dict(summary.counts) == {"added": len(expected)}, summary.problems
    frames = {Path(f.path).name: f for f in _frames(catalogue_engine)}
    assert set(frames) == set(expected)
    for name, read in expected.items():
        frame = frames[name]
        # The full header keeps the string exactly as read ...
        for keyword in ("OBJECT", "FILTER", "INSTRUME"):
            assert _header_values(frame, keyword) == [read], (name, keyword)
        # ... and the normalised fields are that string with blanks collapsed.
        normalised = text_value(read)
        assert (frame.object_name, frame.filter, frame.instrument) == (normalised,) * 3, name
        assert frame.setup_key.startswith(f"{normalised}|"), name
    assert not _quarantine(catalogue_engine)
    # Queries by those values find them (NUL included, on PostgreSQL too).
    from nightlog.catalogue.queries import FrameFilter, find_frames
    with make_sessionmaker(catalogue_engine)() as s:
        for name, read in expected.items():
            found = find_frames(s, FrameFilter(filter=text_value(read)))
            assert [Path(f.path).name for f in found] == [name]


def test_header_text_refuses_the_nul_stand_in_on_postgresql() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    from nightlog.catalogue.types import NUL_STAND_IN, HeaderText

    kind = HeaderText()
    pg, lite = postgresql.dialect(), sqlite.dialect()
    assert kind.process_bind_param("a\x00b", pg) == f"a{NUL_STAND_IN}b"
    assert kind.process_result_value(f"a{NUL_STAND_IN}b", pg) == "a\x00b"
    assert kind.process_bind_param("a\x00b", lite) == "a\x00b"
    with pytest.raises(ValueError, match="U\\+2400"):
        kind.process_bind_param(f"a{NUL_STAND_IN}", pg)


def test_control_characters_beside_a_card_only_astropy_reads(catalogue_engine: Engine,
                                                            tmp_path: Path) -> None:
    # A slash in a string sends the whole header to astropy, which refuses control
    # characters: those cards are still read as written.
    write_raw(tmp_path / "raw" / "mixed.fits", OBJECT=string_field(b"a/b"),
              FILTER=string_field(b"R\x00\x1b[2J\n"))
    summary = run_ingest(catalogue_engine, discover([tmp_path / "raw"], PATTERNS),
                         _ctx(tmp_path))
    assert dict(summary.counts) == {"added": 1}, summary.problems
    (frame,) = _frames(catalogue_engine)
    assert _header_values(frame, "OBJECT") == ["a/b"]
    assert _header_values(frame, "FILTER") == ["R\x00\x1b[2J\n"]
    assert frame.filter == "R\x00\x1b[2J"


def test_the_catalogue_is_intact_after_sql_like_strings(catalogue_engine: Engine,
                                                        tmp_path: Path) -> None:
    sql = string_field(b"'; DELETE FROM frames; --")
    write_raw(tmp_path / "raw" / "a.fits", seed=1)
    write_raw(tmp_path / "raw" / "b.fits", seed=2, OBJECT=sql, FILTER=sql)
    run_ingest(catalogue_engine, discover([tmp_path / "raw"], PATTERNS), _ctx(tmp_path))
    frames = _frames(catalogue_engine)
    assert [f.object_name for f in frames] == ["M 101", "'; DELETE FROM frames; --"]
    # Queries by a hostile value are bound parameters too.
    from nightlog.catalogue.queries import FrameFilter, find_frames
    with make_sessionmaker(catalogue_engine)() as s:
        found = find_frames(s, FrameFilter(filter="'; DELETE FROM frames; --"))
        assert [f.object_name for f in found] == ["'; DELETE FROM frames; --"]


def test_duplicated_keywords_the_first_wins_and_both_are_kept(catalogue_engine: Engine,
                                                              tmp_path: Path) -> None:
    write_raw(tmp_path / "raw" / "dup.fits",
              extra=(card("OBJECT", string_field(b"second")), card("EXPTIME", b"NaN".rjust(20)),
                     card("IMAGETYP", string_field(b"BIAS"))))
    summary = run_ingest(catalogue_engine, discover([tmp_path / "raw"], PATTERNS),
                         _ctx(tmp_path))
    assert dict(summary.counts) == {"added": 1}
    (frame,) = _frames(catalogue_engine)
    assert (frame.object_name, frame.exptime, frame.kind) == ("M 101", 30.0, "science")
    assert _header_values(frame, "OBJECT") == ["M 101", "second"]
    assert _header_values(frame, "EXPTIME") == [30.0, "NaN"]


#: (id, fields, fragment of the quarantine reason)
REFUSED: list[tuple[str, dict[str, bytes], str]] = [
    ("exptime-nan", {"EXPTIME": b"NaN".rjust(20)}, "EXPTIME"),
    ("exptime-inf", {"EXPTIME": b"inf".rjust(20)}, "EXPTIME"),
    ("exptime-minus-inf", {"EXPTIME": b"-inf".rjust(20)}, "EXPTIME"),
    ("exptime-1e400", {"EXPTIME": b"1E400".rjust(20)}, "EXPTIME"),
    ("exptime-string-nan", {"EXPTIME": string_field(b"nan")}, "EXPTIME"),
    ("exptime-nul", {"EXPTIME": string_field(b"3\x000")}, "EXPTIME"),
    ("date-9999", {"DATE_OBS": string_field(b"9999-12-31T23:59:59")}, "DATE-OBS"),
    ("date-0000", {"DATE_OBS": string_field(b"0000-01-01T00:00:00")}, "DATE-OBS"),
    ("date-traversal", {"DATE_OBS": string_field(b"../../etc/x")}, "DATE-OBS"),
    ("date-script", {"DATE_OBS": string_field(b"<script>")}, "DATE-OBS"),
    ("date-nul", {"DATE_OBS": string_field(b"2024-03-10\x00T04:05:06")}, "DATE-OBS"),
    ("date-huge-number", {"DATE_OBS": b"1E400".rjust(20)}, "DATE-OBS"),
]


@pytest.mark.parametrize("fields,reason", [(f, r) for _, f, r in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_impossible_values_are_quarantined_with_a_reason(
        catalogue_engine: Engine, tmp_path: Path, fields: dict[str, bytes], reason: str
        ) -> None:
    write_raw(tmp_path / "raw" / "bad.fits", **fields)
    summary = run_ingest(catalogue_engine, discover([tmp_path / "raw"], PATTERNS),
                         _ctx(tmp_path))
    assert dict(summary.counts) == {"quarantined": 1}
    (row,) = _quarantine(catalogue_engine).values()
    assert reason in row.reason
    assert row.reason.isprintable(), row.reason  # values are shown as repr()
    assert not _frames(catalogue_engine)


# -- archive paths --------------------------------------------------------------------------

@pytest.mark.parametrize("read", [c[2] for c in HOSTILE_STRINGS], ids=HOSTILE_IDS)
def test_archive_paths_from_header_strings_stay_inside_the_root(tmp_path: Path,
                                                                read: str) -> None:
    layout = ArchiveLayout(tmp_path / "archive")
    for value in (read, text_value(read), f"../{read}/..", ".."):
        master = layout.master_path(instrument=value, kind="bias", night=NIGHT,
                                    group_key=str(value), version=1)
        product = layout.product_path(instrument=value, night=NIGHT,
                                      raw_name=f"{value}.fits", product_kind="final",
                                      product_key="0123456789abcdef")
        for path in (master, product):
            assert layout.root in path.resolve().parents
            rel = path.relative_to(layout.root).parts
            assert not any(p in ("", ".", "..") or p.startswith(".") for p in rel)
            assert all(p.isascii() and p.isprintable() for p in rel)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120))
def test_any_instrument_name_gives_a_path_inside_the_root(value: str) -> None:
    layout = ArchiveLayout(Path("/srv/archive"))
    path = layout.master_path(instrument=value, kind=value, night=NIGHT, group_key=value,
                              version=1)
    rel = path.relative_to(layout.root).parts
    assert len(rel) == 5 and rel[0] == "masters"
    assert not any(p in (".", "..") or p.startswith(".") or "/" in p for p in rel)


# -- the CLI: JSON and CSV exact, tables inert ------------------------------------------------


def test_cli_json_and_csv_carry_hostile_strings_exactly(runner: CliRunner,
                                                        tmp_path: Path) -> None:
    expected = _hostile_folder(tmp_path / "raw")
    result = runner.invoke(app, ["ingest", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["frames", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert {n: r["object"] for n, r in rows.items()} == {
        n: text_value(v) for n, v in expected.items()}
    assert {n: r["filter"] for n, r in rows.items()} == {
        n: text_value(v) for n, v in expected.items()}
    result = runner.invoke(app, ["frames", "--format", "csv"])
    assert result.exit_code == 0, result.output
    parsed = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    assert {Path(r["path"]).name: r["object"] for r in parsed} == {
        n: text_value(v) for n, v in expected.items()}


def test_cli_tables_show_control_characters_as_text(runner: CliRunner,
                                                    tmp_path: Path) -> None:
    _hostile_folder(tmp_path / "raw")
    assert runner.invoke(app, ["ingest", str(tmp_path / "raw")]).exit_code == 0
    for command in (["frames"], ["nights"], ["frames", "--kind", "science"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert not [ch for ch in out if not ch.isprintable() and ch != "\n"], command
    out = runner.invoke(app, ["frames"]).stdout
    assert "\\x1b[2J" in out and "M3\\x001" in out
    assert "[bold red]M 1[/]" in out  # rich markup shown, not interpreted


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_printable_never_lets_a_control_character_through(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    if text.isprintable():
        assert shown == text


# -- the HTML report -----------------------------------------------------------------------

class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(k for k, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _report(engine: Engine, tmp_path: Path) -> str:
    settings_ = load_settings(env={}, cwd=tmp_path)
    with make_sessionmaker(engine)() as session:
        return render_html(build_report(session, JobContext.from_settings(settings_), NIGHT,
                                        with_trends=False))


def test_report_shows_hostile_strings_as_text(catalogue_engine: Engine,
                                              tmp_path: Path) -> None:
    expected = _hostile_folder(tmp_path / "raw")
    run_ingest(catalogue_engine, discover([tmp_path / "raw"], PATTERNS), _ctx(tmp_path))
    page_text = _report(catalogue_engine, tmp_path)
    page = _Page()
    page.feed(page_text)
    assert "script" not in page.tags
    assert not [a for a in page.attrs if a.startswith("on")]
    assert not [ch for ch in page_text if not ch.isprintable() and ch not in "\n"]
    text = "".join(page.text)
    for read in expected.values():
        assert f"object: {printable(text_value(read))}" in text


# -- the property test: generated OBJECT strings, ingest to report ----------------------------

#: What a broken camera can put in a FITS string literal of one card: any byte but
#: the quote (doubled quotes are tested above). The reader decodes ASCII, every other
#: byte becoming U+FFFD.
_CARD_BYTES = st.lists(st.integers(0, 255).filter(lambda b: b != 0x27), min_size=1,
                       max_size=60).map(bytes)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres",
                                                       marks=pytest.mark.postgres)])
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(value=_CARD_BYTES)
def test_generated_object_names_survive_ingest_catalogue_cli_and_report(
        request: pytest.FixtureRequest, backend: str, tmp_path: Path, value: bytes) -> None:
    engine = request.getfixturevalue("_property_engine")[backend]
    folder = tmp_path / uuid.uuid4().hex
    write_raw(folder / "x.fits", seed=uuid.uuid4().int & 0xFFFFFFFF,
              OBJECT=string_field(value))
    ctx = _ctx(tmp_path)
    summary = run_ingest(engine, discover([folder], PATTERNS), ctx)
    assert summary.counts["added"] == 1, (summary.problems, value)
    with make_sessionmaker(engine)() as s:
        frame = s.scalars(select(Frame).where(Frame.path == str(folder / "x.fits"))).one()
        header_value = _header_values(frame, "OBJECT")
        object_name = frame.object_name
        night = frame.night
    read = value.decode("ascii", "replace").rstrip(" ")  # trailing blanks do not count
    assert header_value == [read]
    assert object_name == text_value(read)
    record = json.loads(json.dumps({"object": object_name}, ensure_ascii=False))
    assert record["object"] == object_name
    shown = printable(object_name)
    assert shown.isprintable()
    with make_sessionmaker(engine)() as session:
        page = render_html(build_report(session, JobContext.from_settings(
            load_settings(env={}, cwd=tmp_path)), night, with_trends=False))
    parsed = _Page()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert not [a for a in parsed.attrs if a.startswith("on")]
    if object_name is not None:
        assert f"object: {shown}" in "".join(parsed.text)


@pytest.fixture
def _property_engine(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Engine]:
    """One migrated catalogue per backend for the whole property test (frames are told
    apart by their unique folders)."""
    from nightlog.catalogue.engine import create_engine
    from nightlog.catalogue.schema import upgrade

    engines = {}
    backend = request.node.callspec.params["backend"]
    url = (f"sqlite:///{tmp_path / 'prop.sqlite'}" if backend == "sqlite"
           else str(request.getfixturevalue("pg_schema_url")))
    engine = create_engine(url)
    upgrade(engine)
    engines[backend] = engine
    request.addfinalizer(engine.dispose)
    return engines


# -- files that are not plain files -------------------------------------------------------------

def _names(paths: list[Path]) -> set[str]:
    return {p.name for p in paths}


def test_symbolic_links_out_of_the_folder_are_not_followed(catalogue_engine: Engine,
                                                           tmp_path: Path) -> None:
    raw, elsewhere = tmp_path / "raw", tmp_path / "elsewhere"
    write_raw(raw / "real.fits", seed=1)
    write_raw(elsewhere / "secret.fits", seed=2)
    (raw / "out.fits").symlink_to(elsewhere / "secret.fits")
    (raw / "passwd.fits").symlink_to("/etc/passwd")
    (raw / "zero.fits").symlink_to("/dev/zero")
    (raw / "sub").mkdir()
    (raw / "sub" / "in.fits").symlink_to(raw / "real.fits")  # inside: fine
    (raw / "up").symlink_to(elsewhere, target_is_directory=True)  # folders: never walked
    assert _names(discover([raw], PATTERNS)) == {"real.fits", "in.fits"}
    summary = run_ingest(catalogue_engine, discover([raw], PATTERNS), _ctx(tmp_path))
    assert dict(summary.counts) == {"added": 1, "duplicate": 1}
    assert [Path(f.path).name for f in _frames(catalogue_engine)] == ["real.fits"]
    # Configurable: followed on request; a device behind a link is still refused.
    followed = discover([raw], PATTERNS, follow_symlinks=True)
    assert _names(followed) == {"real.fits", "in.fits", "out.fits", "passwd.fits",
                                "zero.fits"}
    summary = run_ingest(catalogue_engine, followed, _ctx(tmp_path, follow_symlinks=True))
    assert summary.counts["added"] == 1  # out.fits, the secret frame
    reasons = {Path(p.path).name: p.reason for p in summary.problems}
    assert "not a regular file: a character device" in str(reasons["zero.fits"])
    assert "SIMPLE" in str(reasons["passwd.fits"])


def test_follow_symlinks_and_max_data_size_are_settings(tmp_path: Path) -> None:
    (tmp_path / "nightlog.toml").write_text(
        '[ingest]\nfollow_symlinks = true\nmax_data_size = "10 MiB"\n')
    loaded = load_settings(tmp_path / "nightlog.toml", env={}, cwd=tmp_path)
    ctx = IngestContext.from_settings(loaded)
    assert ctx.follow_symlinks and ctx.max_data_bytes == 10 * 1024**2
    assert not _ctx(tmp_path / "nowhere").follow_symlinks
    from nightlog.errors import ConfigurationError
    for bad, fragment in (('follow_symlinks = "yes"', "follow_symlinks"),
                          ('max_data_size = "lots"', "max_data_size"),
                          ("max_data_size = -1", "max_data_size"),
                          ("folow_symlinks = true", "unknown")):
        (tmp_path / "nightlog.toml").write_text(f"[ingest]\n{bad}\n")
        with pytest.raises(ConfigurationError, match=fragment):
            load_settings(tmp_path / "nightlog.toml", env={}, cwd=tmp_path)


def test_fifos_and_folders_named_fits_are_skipped_with_a_reason(catalogue_engine: Engine,
                                                                tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_raw(raw / "real.fits", seed=1)
    os.mkfifo(raw / "pipe.fits")  # reading it would wait for a writer forever
    write_raw(raw / "d.fits" / "inner.fits", seed=2)  # a folder named like a file
    found = discover([raw], PATTERNS)
    assert _names(found) == {"real.fits", "pipe.fits", "inner.fits"}

    def ingest() -> None:
        summaries.append(run_ingest(catalogue_engine, found, _ctx(tmp_path)))

    summaries: list[Any] = []
    worker = threading.Thread(target=ingest, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "ingestion blocked on the FIFO"
    (summary,) = summaries
    assert dict(summary.counts) == {"added": 2, "quarantined": 1}
    row = _quarantine(catalogue_engine)["pipe.fits"]
    assert row.reason == "not a regular file: a FIFO (named pipe)"


def test_the_settle_tracker_never_opens_a_fifo(tmp_path: Path) -> None:
    from nightlog.store.settle import SettleTracker, declared_complete

    os.mkfifo(tmp_path / "pipe.fits")
    done: list[object] = []

    def look() -> None:
        done.append(declared_complete(str(tmp_path / "pipe.fits")))
        tracker = SettleTracker(0.0)
        tracker.touch(str(tmp_path / "pipe.fits"), from_mtime=True)
        done.append(tracker.ready())

    worker = threading.Thread(target=look, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the tracker blocked on a FIFO"
    # Handed to ingestion, which says what it is.
    assert done == [True, [str(tmp_path / "pipe.fits")]]


def test_the_watch_daemon_skips_links_out_and_fifos(tmp_path: Path) -> None:
    from nightlog.catalogue.engine import create_engine
    from nightlog.catalogue.schema import upgrade
    from tests.factories import wait_for
    from tests.test_watch import _daemon, _settings

    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    upgrade(engine)
    raw, elsewhere = tmp_path / "raw", tmp_path / "elsewhere"
    raw.mkdir()
    write_raw(elsewhere / "secret.fits", seed=2)
    (raw / "early-link.fits").symlink_to(elsewhere / "secret.fits")  # for the catch-up
    settings = _settings(tmp_path, settle_seconds=0.2)
    try:
        with _daemon(engine, settings, [raw]) as watcher:
            (raw / "late-link.fits").symlink_to(elsewhere / "secret.fits")  # an event
            os.mkfifo(raw / "pipe.fits")
            write_raw(raw / "real.fits", seed=1)
            wait_for(lambda: len(_frames(engine)) == 1 and len(_quarantine(engine)) == 1,
                      15, "one frame and the FIFO quarantined")
            time.sleep(0.5)
            watcher._rescan()  # the rescan does not take the links either
            time.sleep(0.5)
        assert [Path(f.path).name for f in _frames(engine)] == ["real.fits"]
        assert set(_quarantine(engine)) == {"pipe.fits"}
    finally:
        engine.dispose()


# -- sizes: declared and decompressed ----------------------------------------------------------

def _peak_while(fn: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_header_declaring_80_gb_is_refused_without_allocating(catalogue_engine: Engine,
                                                                tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    path = write_raw(raw / "huge.fits")
    data = path.read_bytes()
    for key in (b"NAXIS1", b"NAXIS2"):
        old = card(key.decode(), (b"8" if key == b"NAXIS1" else b"6").rjust(20))
        data = data.replace(old, card(key.decode(), b"200000".rjust(20)))
    path.write_bytes(data)
    # Within the configured limit: the file is too short for what it declares.
    summary, peak = _peak_while(lambda: run_ingest(
        catalogue_engine, [path], _ctx(tmp_path, max_data_bytes=10**12)))
    assert dict(summary.counts) == {"quarantined": 1}
    assert "needs 80,000,002,880 bytes, the file has 5,760" in summary.problems[0].reason
    assert peak < 20 * 1024**2, peak
    # Over the limit (8 GiB by default): refused as declared, before anything else.
    summary, peak = _peak_while(lambda: run_ingest(catalogue_engine, [path], _ctx(tmp_path)))
    assert "declares 80,000,000,000 bytes of data, more than the limit" in str(
        _quarantine(catalogue_engine)["huge.fits"].reason)
    assert peak < 20 * 1024**2, peak


def test_the_watch_daemon_hands_over_a_file_declaring_too_much(tmp_path: Path) -> None:
    from nightlog.store.settle import SettleTracker

    path = write_raw(tmp_path / "huge.fits")
    path.write_bytes(path.read_bytes().replace(card("NAXIS1", b"8".rjust(20)),
                                               card("NAXIS1", b"200000".rjust(20))))
    # Without a limit it looks like a file still arriving, and is held; with the
    # limit it is handed to ingestion at once, which quarantines it.
    held = SettleTracker(0.0)
    held.touch(str(path), from_mtime=True)
    assert held.ready() == []
    limited = SettleTracker(0.0, max_data_bytes=10**6)
    limited.touch(str(path), from_mtime=True)
    assert limited.ready() == [str(path)]


def test_a_gzip_bomb_is_stopped_at_the_limit(catalogue_engine: Engine, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    head = write_raw(tmp_path / "head.fits").read_bytes()
    bomb = raw / "bomb.fits.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as gz:
        gz.write(head)
        zeros = bytes(1 << 20)
        for _ in range(50):  # 50 MiB of zeros after a small frame
            gz.write(zeros)
    assert bomb.stat().st_size < 200_000
    limit = 40 * 1024**2
    summary, peak = _peak_while(lambda: run_ingest(
        catalogue_engine, [bomb], _ctx(tmp_path, max_data_bytes=limit)))
    assert dict(summary.counts) == {"quarantined": 1}
    assert "gzip data expands beyond the limit of 41,943,040 bytes" in str(
        summary.problems[0].reason)
    assert peak < 8 * 1024**2, peak  # streamed: the data is never held
    # Under the limit, the same file is read in the same small memory.
    summary, peak = _peak_while(lambda: run_ingest(
        catalogue_engine, [bomb], _ctx(tmp_path, max_data_bytes=100 * 1024**2)))
    assert summary.counts["added"] == 1, summary.problems
    assert peak < 8 * 1024**2, peak


def _long_string_cards(key: str, value: str) -> tuple[bytes, ...]:
    """``key`` holding ``value`` in the long-string (``CONTINUE``) convention."""
    parts = [value[i:i + 60] for i in range(0, len(value), 60)]
    amp = [b"&"] * (len(parts) - 1) + [b""]
    first = card(key, string_field(parts[0].encode() + amp[0]))
    rest = [(b"CONTINUE  " + string_field(p.encode() + a)).ljust(80)
            for p, a in zip(parts[1:], amp[1:], strict=True)]
    return (first, *rest)


def test_long_strings_over_several_cards(catalogue_engine: Engine, tmp_path: Path) -> None:
    # A long-string value is longer than any one card: kept whole in the object name,
    # refused with a reason as a filter name (names are at most 80 characters).
    value = "".join(chr(65 + i % 26) for i in range(150))
    raw = tmp_path / "raw"
    write_raw(raw / "object.fits", seed=1, extra=_long_string_cards("OBJECT", value),
              OBJECT=None)
    write_raw(raw / "filter.fits", seed=2, extra=_long_string_cards("FILTER", value),
              FILTER=None)
    summary = run_ingest(catalogue_engine, discover([raw], PATTERNS), _ctx(tmp_path))
    assert dict(summary.counts) == {"added": 1, "quarantined": 1}, summary.problems
    (frame,) = _frames(catalogue_engine)
    assert frame.object_name == value
    reason = _quarantine(catalogue_engine)["filter.fits"].reason
    assert "FILTER" in reason and "150 characters, more than the 80" in reason


# -- file names -----------------------------------------------------------------------------------

def test_file_names_that_are_not_utf8_are_skipped_with_a_warning(
        catalogue_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = tmp_path / "raw"
    write_raw(raw / "ok.fits", seed=1)
    bad = os.path.join(os.fsencode(raw), b"caf\xe9\x1b[2J.fits")
    with open(bad, "wb") as fh:
        fh.write(write_raw(tmp_path / "other.fits", seed=2).read_bytes())
    with caplog.at_level("WARNING", logger="nightlog.ingest"):
        found = discover([raw, os.fsdecode(bad)], PATTERNS)
    assert _names(found) == {"ok.fits"}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("not valid UTF-8" in m for m in messages)
    assert all("caf\\xe9\\x1b[2J.fits" in m and m.isprintable() for m in messages)
    # Before, such a name stopped the whole batch with a UnicodeEncodeError.
    summary = run_ingest(catalogue_engine, found, _ctx(tmp_path))
    assert dict(summary.counts) == {"added": 1}


def test_file_names_with_control_characters_are_data(runner: CliRunner, tmp_path: Path) -> None:
    name = "evil\x1b[2J\nFAKE <b>.fits"
    write_raw(tmp_path / "raw" / name, seed=1)
    assert runner.invoke(app, ["ingest", str(tmp_path / "raw")]).exit_code == 0
    (row,) = json.loads(runner.invoke(app, ["frames", "--format", "json"]).stdout)
    assert row["path"] == str(tmp_path / "raw" / name)
    table = runner.invoke(app, ["frames"]).stdout
    assert "\x1b" not in table and "evil\\x1b[2J\\nFAKE" in table.replace("\n", "")


def test_log_lines_show_control_characters_escaped() -> None:
    import logging

    from nightlog.cli.logs import LogFormat, configure_logging

    configure_logging(LogFormat.text)
    logger = logging.getLogger("nightlog")
    try:
        formatter = logger.handlers[0].formatter
        assert formatter is not None
        record = logging.makeLogRecord({"msg": "quarantined %s: %s", "levelname": "WARNING",
                                        "args": ("/raw/a\x1b[2J\nb.fits", "OBJECT='\x00'")})
        line = formatter.format(record)
        assert line.isprintable() and "a\\x1b[2J\\nb.fits" in line
    finally:
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
