"""The live web view through Starlette's test client: every route, the token and host
rules, read-only methods, security headers, escaping of hostile header strings, the
thumbnails against the night report's own code, and the change mark the pages poll.

The archive is the small simulated LFC night, reduced, plus a science frame whose
OBJECT is a script tag (catalogued, not reduced), a quarantined file whose name is
markup, a quarantine reason and a recorded reduction failure that are markup, and a
watch daemon whose last action is markup.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.frames import latest_by_path
from nightlog.cli.app import app as cli_app
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.errors import ConfigurationError
from nightlog.report.thumbnails import zscale_thumbnail
from nightlog.settings import Settings
from nightlog.store.images import read_image
from nightlog.web import live_data
from nightlog.web.app import create_app
from nightlog.web.markup import Markup, escape, fill, join
from nightlog.web.security import COOKIE, check_binding, is_loopback
from tests.factories import reduced_night
from tests.test_report import HOSTILE_NAME, HOSTILE_OBJECT, HOSTILE_REASON, _parse

HOSTILE_ACTION = "ingested <b onmouseover=alert(5)>bold</b>"
TOKEN = "k3y-of-the-dome_0123456789"
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, lfc_night: Path) -> Settings:
    from nightlog.catalogue.daemons import register_daemon
    from nightlog.catalogue.quarantine import record_quarantined
    from nightlog.catalogue.reductions import record_failure

    folder = tmp_path_factory.mktemp("serve") / "night"
    settings = reduced_night(folder, lfc_night)
    raw = folder / "raw"
    source = sorted(p for p in raw.glob("*.fits")
                    if fits.getheader(p).get("IMAGETYP") == "OBJECT")[0]
    with fits.open(source) as hdus:
        hdus[0].header["OBJECT"] = HOSTILE_OBJECT
        hdus.writeto(raw / "hostile.fits")
    (raw / HOSTILE_NAME).write_bytes(b"this is not a FITS file\n" * 10)
    engine = create_engine(settings.database_url)
    try:
        run_ingest(engine, discover([raw], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        with make_sessionmaker(engine)() as session, session.begin():
            record_quarantined(session, str(raw / "evil.fits"), reason=HOSTILE_REASON,
                               error="NotFitsError")
            frame = latest_by_path(session, str(raw / "hostile.fits"))
            assert frame is not None
            record_failure(session, frame.id, kind="final", attempts=3,
                           error="ReductionError", reason=f"disk gone {HOSTILE_REASON}",
                           software_version="test")
            register_daemon(session, name="watch", host="dome<i>pc</i>", pid=4242,
                            directories=[str(raw)], interval_s=10.0, software_version="test",
                            now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    finally:
        engine.dispose()
    return settings


@pytest.fixture
def client(served: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(served), base_url=LOCAL) as c:
        yield c


def _read(settings: Settings, fn: Any, *args: Any) -> Any:
    engine = create_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return fn(session, *args)
    finally:
        engine.dispose()


def _night(settings: Settings) -> dict[str, Any]:
    return _read(settings, live_data.night_view, None, dt.datetime.now(dt.UTC))


# -- every route ------------------------------------------------------------------------

def _routes(settings: Settings) -> dict[str, str]:
    doc = _night(settings)
    frame = doc["frames"][0]["id"]
    science = next(f for f in doc["frames"] if f["reduction"] == "reduced")
    product = _read(settings, live_data.frame_view, science["id"])["products"][0]["id"]
    return {
        "/": "text/html", f"/night/{doc['night']}": "text/html", "/nights": "text/html",
        f"/frame/{science['id']}": "text/html", "/api/pulse": "application/json",
        "/api/night": "application/json", f"/api/night/{doc['night']}": "application/json",
        "/api/nights": "application/json", f"/api/frame/{frame}": "application/json",
        f"/thumb/frame/{frame}.png": "image/png", f"/thumb/product/{product}.png": "image/png",
        f"/thumb/master/{doc['masters'][0]['id']}.png": "image/png",
        "/static/live.js": "text/javascript", "/static/live.css": "text/css",
        "/static/icon.svg": "image/svg+xml",
    }


def test_every_route_answers_with_the_security_headers(served: Settings,
                                                        client: TestClient) -> None:
    for url, kind in _routes(served).items():
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.text[:300])
        assert answer.headers["content-type"].startswith(kind), url
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


def test_nothing_can_be_written(served: Settings, client: TestClient) -> None:
    for url in _routes(served):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert client.request(method, url).status_code == 405, (method, url)


def test_unknown_things_are_404(client: TestClient) -> None:
    for url in ("/frame/999999", "/night/yesterday", "/thumb/frame/999999.png",
                "/frame/99999999999999999999999", "/thumb/master/99999999999999999999.png",
                "/thumb/secrets/1.png", "/static/../nightlog.toml", "/static/app.py",
                "/nope"):
        assert client.get(url).status_code == 404, url
    answer = client.get("/api/frame/999999")
    assert answer.status_code == 404 and answer.json() == {"error": "no frame 999999"}


def test_pages_load_nothing_from_elsewhere_and_run_no_inline_script(
        served: Settings, client: TestClient) -> None:
    doc = _night(served)
    science = next(f for f in doc["frames"] if f["reduction"] == "reduced")
    for url in ("/", "/nights", f"/frame/{science['id']}"):
        page = _parse(client.get(url).text)
        assert page.tags["script"] == 1
        sources = [v for tag, k, v in page.attrs if k in ("src", "href")]
        assert all(v and v.startswith("/") for v in sources), sources
        assert ("script", "src", "/static/live.js") in page.attrs
        assert not [k for _tag, k, _v in page.attrs if k.startswith("on")]
        assert "style" not in page.tags


# -- what the pages show ----------------------------------------------------------------

def test_tonight_lists_every_frame_newest_first_with_its_masters(
        served: Settings, client: TestClient) -> None:
    from nightlog.catalogue.listing import frame_rows
    from nightlog.catalogue.provenance import find_product, provenance_tree
    from nightlog.catalogue.queries import FrameFilter, latest_night

    night = _read(served, latest_night)
    expected = _read(served, frame_rows, FrameFilter(night=night))
    rows = _parse(client.get("/").text).table("frame")
    from nightlog.catalogue.quality import quality_of

    measured = _read(served, quality_of, [r["id"] for r in expected])
    assert measured  # the reduced night's science frames carry their quality record
    want = sorted(expected, key=lambda r: (r["obs_time"], r["id"]), reverse=True)
    assert [int(r[0]) for r in rows] == [r["id"] for r in want]
    assert [r[2] for r in rows] == [r["kind"] for r in want]
    for row, rec in zip(rows, want, strict=True):
        assert row[3] == (rec["filter"] or "–") and row[5] == (rec["object"] or "–")
        # a science frame's quality record comes with its product; others have none
        assert (row[7] == "not measured") is (rec["kind"] != "science"
                                             or rec["id"] not in measured), row
    for f in _night(served)["frames"]:
        if f["reduction"] != "reduced":
            continue
        product = _read(served, lambda s, i: provenance_tree(s, find_product(s, str(i))),
                        _read(served, live_data.frame_view, f["id"])["products"][0]["id"])
        assert [(m["role"], m["id"]) for m in f["masters"]] == [
            (m.role, m.id) for m in product.masters]
    statuses = {r[0]: r[6] for r in rows}
    hostile = next(f for f in expected if f["object"] == HOSTILE_OBJECT)
    assert statuses[str(hostile["id"])] == "reduction failed"


def test_hostile_strings_stay_text(served: Settings, client: TestClient) -> None:
    raw = client.get("/").text
    assert HOSTILE_OBJECT not in raw and HOSTILE_ACTION not in raw
    assert html.escape(HOSTILE_OBJECT, quote=True) in raw
    page = _parse(raw)
    text = "".join(page.text)
    for hostile in (HOSTILE_OBJECT, HOSTILE_REASON, HOSTILE_NAME, "dome<i>pc</i>"):
        assert hostile in text, hostile
    assert page.tags["script"] == 1 and "i" not in page.tags
    assert not [k for _tag, k, _v in page.attrs if k.startswith("on")]
    assert ("span", "title", str(Path(served.archive_root) / "raw" / HOSTILE_NAME)
            ) in page.attrs
    # The JSON carries the strings as they are: the page's script never parses them.
    doc = client.get("/api/night").json()
    assert HOSTILE_OBJECT in {f["object"] for f in doc["frames"]}
    assert HOSTILE_REASON in {q["reason"] for q in doc["quarantine"]}
    hostile = next(f for f in doc["frames"] if f["object"] == HOSTILE_OBJECT)
    frame_page = _parse(client.get(f"/frame/{hostile['id']}").text)
    assert HOSTILE_OBJECT in "".join(frame_page.text) and frame_page.tags["script"] == 1


def test_problems_quarantine_and_daemon(served: Settings, client: TestClient) -> None:
    page = _parse(client.get("/").text)
    problems = page.table("what")
    assert any(HOSTILE_REASON in r[2] and r[1] == "hostile.fits" for r in problems)
    quarantine = page.table("file")
    assert {r[0] for r in quarantine} >= {HOSTILE_NAME, "evil.fits"}
    assert any(r[2] == HOSTILE_REASON for r in quarantine)
    daemons = page.table("host")
    assert daemons[0][:3] == ["dome<i>pc</i>", "4242", "dead (no heartbeat)"]
    assert daemons[0][3] in ("60 min ago", "61 min ago", "62 min ago")


def test_nights_page_counts_every_frame(served: Settings, client: TestClient) -> None:
    from nightlog.catalogue.queries import night_counts

    counts = _read(served, night_counts)
    rows = _parse(client.get("/nights").text).table("night")
    assert [(r[0], int(r[1])) for r in rows] == [
        (n.isoformat(), sum(c.count for c in counts if c.night == n))
        for n in sorted({c.night for c in counts}, reverse=True)]
    assert client.get("/api/nights").json()[0]["page"] == f"/night/{rows[0][0]}"


def test_frame_page_shows_provenance(served: Settings, client: TestClient) -> None:
    from nightlog.catalogue.provenance import find_product, provenance_tree

    science = next(f for f in _night(served)["frames"] if f["reduction"] == "reduced")
    doc = client.get(f"/api/frame/{science['id']}").json()
    tree = _read(served, lambda s, i: provenance_tree(s, find_product(s, str(i))).as_dict(),
                 doc["products"][0]["id"])
    assert {k: v for k, v in doc["products"][0].items() if k not in ("thumbnail", "steps")
            } == tree
    assert [s["name"] for s in doc["products"][0]["steps"]][:2] == ["saturation", "overscan"]
    page = _parse(client.get(f"/frame/{science['id']}").text)
    text = "".join(page.text)
    for m in tree["masters"]:
        assert f"{m['kind']} {m['id']} v{m['version']}" in text and m["sha256"] in text
        for i in m["inputs"]:
            assert ("a", "href", f"/frame/{i['frame_id']}") in page.attrs
    assert tree["raw"]["sha256"] in text and "cosmic_rays" in text


def test_quality_figures_show_through_the_adapter(served: Settings, client: TestClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from nightlog.web.quality import QualityColumn

    first = _night(served)["frames"][0]["id"]
    monkeypatch.setattr(live_data, "QUALITY_COLUMNS",
                        (QualityColumn("fwhm", "FWHM", "arcsec"), QualityColumn("poor", "poor")))
    monkeypatch.setattr(live_data, "frame_quality",
                        lambda session, ids: {first: {"fwhm": 1.234567, "poor": False}})
    rows = {r[0]: r[7] for r in _parse(client.get("/").text).table("frame")}
    assert rows[str(first)] == "FWHM: 1.235 arcsec poor: False"
    assert {v for k, v in rows.items() if k != str(first)} == {"not measured"}


# -- thumbnails -------------------------------------------------------------------------

def test_thumbnail_is_the_report_picture_and_is_cached(served: Settings,
                                                       client: TestClient) -> None:
    frame = _night(served)["frames"][1]
    source = _read(served, live_data.image_source, "frame", frame["id"])
    expected = zscale_thumbnail(read_image(source.path, source.hdu).data).png
    assert client.get(frame["thumbnail"]).content == expected
    cache = Path(served.archive_root) / "cache" / "thumbnails"
    before = sorted(cache.iterdir())
    assert client.get(frame["thumbnail"]).content == expected
    assert sorted(cache.iterdir()) == before
    assert not [p for p in before if p.suffix != ".png"]  # no temporary left behind


def test_a_missing_file_costs_only_its_thumbnail(served: Settings, client: TestClient,
                                                 tmp_path: Path) -> None:
    master = _night(served)["masters"][0]
    source = _read(served, live_data.image_source, "master", master["id"])
    moved = tmp_path / "away.fits"
    Path(source.path).rename(moved)
    try:
        answer = client.get(master["thumbnail"])
        assert answer.status_code == 404 and "file missing" in answer.text
        assert client.get("/").status_code == 200
    finally:
        moved.rename(source.path)


# -- the change mark --------------------------------------------------------------------

def test_the_mark_moves_only_when_the_catalogue_does(served: Settings, client: TestClient,
                                                     tmp_path: Path) -> None:
    from nightlog.catalogue.quarantine import record_quarantined, resolve_quarantined

    first = client.get("/api/pulse").json()
    assert client.get("/api/pulse").json()["mark"] == first["mark"]
    engine = create_engine(served.database_url)
    path = str(tmp_path / "late.fits")
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            record_quarantined(session, path, reason="test", error="NotFitsError")
        moved = client.get("/api/pulse").json()["mark"]
        assert moved != first["mark"]
        with make_sessionmaker(engine)() as session, session.begin():
            assert resolve_quarantined(session, path)
        resolved = client.get("/api/pulse").json()["mark"]
        assert resolved not in (first["mark"], moved)
        # A master marked bad changes no id: the mark moves all the same, and comes
        # back when it is marked good again.
        from nightlog.catalogue.masters import get_master, set_quality

        master_id = _night(served)["masters"][0]["id"]
        for quality, reason in (("bad", "striped"), ("good", None)):
            with make_sessionmaker(engine)() as session, session.begin():
                set_quality(session, get_master(session, master_id), quality, reason)
            mark = client.get("/api/pulse").json()["mark"]
            assert (mark != resolved) is (quality == "bad")
    finally:
        engine.dispose()


def test_a_page_polls_the_mark_of_its_own_night(client: TestClient) -> None:
    night = client.get("/api/night").json()["night"]
    for url, pulse in (("/", "/api/pulse"), (f"/night/{night}", f"/api/pulse?night={night}")):
        body = [a for a in _parse(client.get(url).text).attrs if a[0] == "body"]
        attrs = {k: v for _tag, k, v in body}
        assert attrs["data-live"] == "1" and attrs["data-pulse"] == pulse
        assert client.get(pulse).json()["mark"] == attrs["data-mark"]
    assert client.get("/api/pulse?night=1999-01-01").json()["mark"] != attrs["data-mark"]
    assert client.get("/api/pulse?night=soon").status_code == 404
    frame_body = [a for a in _parse(client.get("/nights").text).attrs if a[0] == "body"]
    assert ("body", "data-live", "0") in frame_body


# -- who may read -----------------------------------------------------------------------

@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("192.168.1.20", False), ("::", False),
    ("dome.example.org", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_elsewhere_needs_a_token() -> None:
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", TOKEN)
    with pytest.raises(ConfigurationError, match="give a token"):
        check_binding("0.0.0.0", None)
    for bad in ("short", "has space in it 123456", "semi;colon;0123456789", "é" * 20):
        with pytest.raises(ConfigurationError, match="at least 16"):
            check_binding("127.0.0.1", bad)


def test_the_cli_refuses_an_open_address_without_a_token(served: Settings,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.chdir(served.archive_root)
    monkeypatch.delenv("NIGHTLOG_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0"],
                                env={"NIGHTLOG_CONFIG": None, "NIGHTLOG_DATABASE_URL": None})
    assert result.exit_code != 0
    assert "give a token" in result.output


def test_without_a_token_only_loopback_names_are_answered(served: Settings) -> None:
    app = create_app(served)
    for base in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        with TestClient(app, base_url=base) as c:
            assert c.get("/api/pulse").status_code == 200, base
    with TestClient(app, base_url="http://rebound.example.com") as c:
        answer = c.get("/api/pulse")
        assert answer.status_code == 400 and "mark" not in answer.text


def test_token_in_header_query_then_cookie(served: Settings) -> None:
    with TestClient(create_app(served, token=TOKEN), base_url="http://dome.example.org",
                    follow_redirects=False) as c:
        assert c.get("/").status_code == 401
        assert c.get("/thumb/frame/1.png").status_code == 401
        assert c.get("/", headers={"Authorization": "Bearer wrong-token-0123456"}
                     ).status_code == 401
        assert c.get("/api/pulse", headers={"Authorization": f"Bearer {TOKEN}"}
                     ).status_code == 200
        assert c.get("/?token=wrong-token-0123456").status_code == 401
        assert COOKIE not in c.cookies
        answer = c.get(f"/nights?x=1&token={TOKEN}")
        assert answer.status_code == 303 and answer.headers["location"] == "/nights?x=1"
        cookie = answer.headers["set-cookie"]
        assert f"{COOKIE}={TOKEN}" in cookie and "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert c.get("/nights").status_code == 200  # the cookie now carries it
        c.cookies.clear()
        assert c.get("/nights").status_code == 401


def test_the_token_redirect_stays_on_the_server() -> None:
    import asyncio

    from nightlog.web.security import SecurityMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the redirect is answered by the middleware")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "//elsewhere.example/x",
             "query_string": f"token={TOKEN}".encode(), "headers": [(b"host", b"dome")]}
    asyncio.run(SecurityMiddleware(app, token=TOKEN)(scope, receive, send))
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 303 and headers[b"location"] == b"/elsewhere.example/x"


# -- markup -----------------------------------------------------------------------------

@given(st.text())
def test_any_text_filled_in_stays_text(text: str) -> None:
    page = _parse(fill('<p title="{t}">{t}</p>', t=text))
    visible = str(escape(text))
    assert set(page.tags) == {"p"}
    assert page.attrs == [("p", "title", html.unescape(visible))]
    assert "".join(page.text) == html.unescape(visible)
    if text.isprintable():
        assert "".join(page.text) == text


def test_markup_is_not_escaped_twice() -> None:
    inner = fill("<b>{x}</b>", x="<i>")
    assert fill("<p>{y}</p>", y=inner) == "<p><b>&lt;i&gt;</b></p>"
    assert join(["<", Markup("<br>"), None, 3]) == "&lt;<br>3"
    assert escape("\x1b[31m") == "\\x1b[31m"



# -- on both catalogues, and through the command ----------------------------------------

def test_the_view_on_both_catalogues(reduced: Settings) -> None:
    from nightlog.catalogue.listing import frame_rows
    from nightlog.catalogue.queries import FrameFilter, latest_night

    night = _read(reduced, latest_night)
    expected = {r["id"] for r in _read(reduced, frame_rows, FrameFilter(night=night))}
    with TestClient(create_app(reduced), base_url=LOCAL) as c:
        rows = _parse(c.get("/").text).table("frame")
        assert {int(r[0]) for r in rows} == expected
        doc = c.get("/api/night").json()
        science = next(f for f in doc["frames"] if f["reduction"] == "reduced")
        assert len(science["masters"]) == 3
        assert c.get(f"/frame/{science['id']}").status_code == 200
        assert c.get(science["thumbnail"]).content.startswith(b"\x89PNG")
        mark = c.get("/api/pulse").json()["mark"]
        assert c.get("/api/pulse").json()["mark"] == mark == doc["mark"]


def test_nightlog_serve_serves_until_interrupted(served: Settings) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("NIGHTLOG_CONFIG", "NIGHTLOG_DATABASE_URL", "NIGHTLOG_SERVE_TOKEN")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-m", "nightlog", "serve", "--port", str(port)],
                            cwd=served.archive_root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/pulse",
                                            timeout=5) as answer:
                    assert answer.status == 200 and "mark" in answer.read().decode()
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
