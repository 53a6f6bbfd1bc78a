"""``nightlog watch`` started while the catalogue is away (a boot before the database
server): it waits, logging each retry, rather than exit; a signal ends the wait
with exit status 0; once the catalogue answers it starts."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.schema import head_revision
from nightlog.daemon.options import WatchOptions
from nightlog.daemon.startup import wait_for_catalogue

REPO = Path(__file__).resolve().parents[1]
SECRET = "S3cret@PW"


def test_watch_waits_for_an_unreachable_catalogue_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "NIGHTLOG_DATABASE_URL": f"postgresql://nightlog:{SECRET}@127.0.0.1:1/archive"}
    env.pop("NIGHTLOG_CONFIG", None)
    log = tmp_path / "watch.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "nightlog", "watch", str(tmp_path),
                                 "--log-format", "json"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and log.read_text().count('"db-retry"') < 3:
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()  # still waiting, not exited
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    retries = [line for line in lines if line.get("event") == "db-retry"]
    assert len(retries) >= 3 and all("unreachable" in r["message"] for r in retries)
    assert [r["delay"] for r in retries[:3]] == [0.5, 1.0, 2.0]  # the outage backoff
    assert lines[-1]["event"] == "stopped-unreachable"
    assert code == 0
    assert "S3cret" not in log.read_text() and "PW@" not in log.read_text()


def test_the_daemon_starts_once_the_catalogue_answers(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'nightlog.sqlite'}")
    refused = [0]

    def _down(*_args: Any) -> None:
        if refused[0] < 3:
            refused[0] += 1
            raise OperationalError("SELECT", {}, ConnectionError("connection refused"))

    event.listen(engine, "before_cursor_execute", _down)
    options = WatchOptions(directories=(tmp_path,), patterns=("*.fits",), backoff_first=0.05,
                           backoff_cap=0.1)
    with caplog.at_level(logging.INFO, logger="nightlog.watch"):
        assert wait_for_catalogue(engine, options, threading.Event()) == head_revision()
    engine.dispose()
    events = [getattr(r, "event", "") for r in caplog.records]
    assert events.count("db-retry") == 3 and events[-1] == "db-recovered"
    assert caplog.records[-1].getMessage() == "catalogue reachable again after 3 failed attempt(s)"
