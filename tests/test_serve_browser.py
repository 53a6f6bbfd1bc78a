"""The live view in a real headless Chromium (selenium and chromedriver): a watch daemon
follows a folder, the server runs on a free port, the page is open; a FITS file dropped
into the folder must appear on the page within 5 s without a reload, its hostile
OBJECT as text, with no error in the browser's console. Screenshots (PNG) of the live
page and of the frame's page are saved where the test prints; with
``NIGHTLOG_DOCS_SCREENSHOTS=1`` copies go to ``docs/images/serve-*.png``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits

from nightlog.catalogue.engine import create_engine
from nightlog.settings import Settings
from nightlog.web.app import create_app
from tests.factories import reduced_night
from tests.test_watch import _daemon, _settings

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "<img src=x onerror=alert(2)><script>alert(1)</script>"
APPEARS_WITHIN_S = 5.0


def _browser() -> tuple[str, str]:
    """Chromium and chromedriver, or skip (fail when ``NIGHTLOG_REQUIRE_BROWSER=1``)."""
    browser = next((p for n in ("chromium", "chromium-browser")
                    if (p := shutil.which(n))), None)
    driver = shutil.which("chromedriver")
    missing = [name for name, found in (("chromium", browser), ("chromedriver", driver))
               if found is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        reason = (f"no {' and no '.join(missing)} (apt-get install chromium chromium-driver; "
                  "pip install selenium; .ci/run does)")
        if os.environ.get("NIGHTLOG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NIGHTLOG_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    assert browser is not None and driver is not None
    return browser, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(settings: Settings) -> Iterator[str]:
    """The live view served by uvicorn in a thread; its address."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
    assert not thread.is_alive()


@contextmanager
def _chrome(browser: str, driver_path: str, tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--window-size=1400,1100", f"--user-data-dir={tmp_path / 'profile'}",
                "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _science_copy(source: Path, target: Path, *, obj: str) -> None:
    """A new science frame: ``source`` with OBJECT ``obj`` (so new bytes), written beside
    ``target`` and renamed into place (as a camera's writer does)."""
    with fits.open(source) as hdus:
        # No comment: a long value would push it past the card's 80 characters.
        hdus[0].header["OBJECT"] = (obj, "")
        partial = target.with_name("." + target.name + ".part")
        hdus.writeto(partial)
    os.replace(partial, target)


def _text(driver: Any, selector: str) -> str:
    """The text of the first element matching ``selector`` (read in one step: the page
    replaces its content while it is read)."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
        selector))


_ROW_OF = ("return Array.from(document.querySelectorAll('#frames tbody tr')).filter("
           "r => Array.from(r.querySelectorAll('span.object'), e => e.textContent)"
           ".includes(arguments[0])).map(r => r.innerText).join('\\n');")
_LINK_OF = ("const r = Array.from(document.querySelectorAll('#frames tbody tr')).find("
            "r => Array.from(r.querySelectorAll('span.object'), e => e.textContent)"
            ".includes(arguments[0])); return r.querySelector('a').getAttribute('href');")


def _console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_a_dropped_file_appears_on_the_open_page(tmp_path: Path, lfc_night: Path) -> None:
    browser, driver_path = _browser()
    from selenium.webdriver.support.ui import WebDriverWait

    folder = tmp_path / "night"
    reduced_night(folder, lfc_night)
    settings = _settings(folder, settle_seconds=0.3, heartbeat_seconds=1, quicklook=True,
                         build_delay_seconds=0.5, build_max_delay_seconds=5)
    incoming = folder / "incoming"
    incoming.mkdir()
    science = sorted(p for p in (folder / "raw").glob("*.fits")
                     if fits.getheader(p).get("IMAGETYP") == "OBJECT")
    _science_copy(science[-1], incoming / "early.fits", obj="M 33 field 1")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    engine = create_engine(settings.database_url)
    try:
        with (_daemon(engine, settings, [incoming]), _server(settings) as url,
              _chrome(browser, driver_path, tmp_path) as driver):
            errors: list[dict[str, Any]] = []
            driver.get(url + "/")
            wait = WebDriverWait(driver, 20)
            wait.until(lambda d: "M 33 field 1" in _text(d, "#frames"))
            wait.until(lambda d: "running" in _text(d, "#daemons"))
            driver.execute_script("window.nightlogNoReload = 42;")
            count_rows = "return document.querySelectorAll('#frames tbody tr').length;"
            rows_before = driver.execute_script(count_rows)

            _science_copy(science[-1], incoming / "late.fits", obj=HOSTILE)
            dropped = time.monotonic()
            WebDriverWait(driver, APPEARS_WITHIN_S, poll_frequency=0.05).until(
                lambda d: HOSTILE in _text(d, "#frames"))
            took = time.monotonic() - dropped
            print(f"the dropped file appeared on the page after {took:.2f} s")
            assert took < APPEARS_WITHIN_S
            assert driver.execute_script("return window.nightlogNoReload;") == 42
            assert driver.execute_script(count_rows) == rows_before + 1

            # The hostile OBJECT is text: one cell holds it, no element came of it.
            cells = driver.execute_script("return Array.from(document.querySelectorAll("
                                          "'span.object'), e => e.textContent);")
            assert HOSTILE in cells
            assert driver.execute_script(
                "return document.querySelectorAll('script').length;") == 1
            assert driver.execute_script(
                "return Array.from(document.images).filter("
                "i => !i.getAttribute('src').startsWith('/thumb/')).length;") == 0
            # Its quick-look follows (masters used shown), then every thumbnail loads.
            WebDriverWait(driver, 60).until(
                lambda d: "quick-look" in d.execute_script(_ROW_OF, HOSTILE),
                message=f"no quick-look: {_text(driver, '#content')}")
            row = driver.execute_script(_ROW_OF, HOSTILE)
            assert "bias: master" in row and "flat: master" in row
            wait.until(lambda d: d.execute_script(
                "return Array.from(document.images).every(i => i.complete && "
                "i.naturalWidth > 0);"))
            driver.save_screenshot(str(shots / "serve-tonight.png"))
            errors += _console_errors(driver)

            driver.set_window_size(1400, 2400)  # the frame's page down to its provenance
            driver.get(url + str(driver.execute_script(_LINK_OF, HOSTILE)))
            wait.until(lambda d: _text(d, "h1").startswith("Frame "))
            assert HOSTILE in _text(driver, "#facts")
            wait.until(lambda d: d.execute_script(
                "return Array.from(document.images).every(i => i.complete && "
                "i.naturalWidth > 0);"))
            driver.save_screenshot(str(shots / "serve-frame.png"))
            errors += _console_errors(driver)
            driver.set_window_size(1400, 700)
            driver.get(url + "/nights")
            driver.save_screenshot(str(shots / "serve-nights.png"))
            errors += _console_errors(driver)
            assert errors == [], errors
    finally:
        engine.dispose()
    print(f"screenshots: {shots}")
    for shot in sorted(shots.glob("serve-*.png")):
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        if os.environ.get("NIGHTLOG_DOCS_SCREENSHOTS") == "1":
            (REPO / "docs" / "images").mkdir(exist_ok=True)
            shutil.copyfile(shot, REPO / "docs" / "images" / shot.name)
