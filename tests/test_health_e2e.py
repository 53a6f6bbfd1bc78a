"""End to end: four simulated nights of the LFC, then a fifth whose true gain is 1.5
times higher (the controller changed). Building that night's masters raises the gain
alarm of each filter's flat; ``status`` lists it; ``nightlog notify`` sends it to a
local webhook with its payload; ``calib history`` and the report show it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.schema import upgrade
from nightlog.cli.app import app
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.settings import load_settings
from nightlog.simulate import load_truth, simulate_night
from tests.test_notify import Receiver, receiver  # noqa: F401  (the fixture)

NIGHT0 = dt.date(2016, 1, 10)
FACTOR = 1.5


def test_a_changed_gain_raises_an_alarm_and_its_webhook(
        tmp_path: Path, receiver: Receiver, runner: CliRunner,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nightlog.toml").write_text(
        "[health]\nmin_points = 3\n\n"
        f'[[notify.webhooks]]\nurl = "{receiver.url}"\nevents = ["alarm"]\nretries = 0\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={}, cwd=tmp_path)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    ctx = JobContext.from_settings(settings)
    try:
        for i in range(5):
            raw = tmp_path / "raw" / f"night{i}"
            simulate_night(raw, camera="lfc", night=NIGHT0 + dt.timedelta(days=i), scale=0.1,
                           seed=20 + i, n_bias=5, n_dark=5, n_flat=5, n_science=1,
                           gain_factor=FACTOR if i == 4 else 1.0)
            run_ingest(engine, discover([raw], settings.ingest.patterns),
                       IngestContext.from_settings(settings))
            built = run_build(engine, ctx)
            assert {o.kind for o in built if o.status == "built"} == {"bias", "dark", "flat"}
            if i < 4:  # normal nights: nothing leaves its band
                assert json.loads(runner.invoke(app, ["status", "--format", "json"]).output
                                  )["alarms"] == []
    finally:
        engine.dispose()
    truth = load_truth(tmp_path / "raw" / "night4")
    assert truth.summary["gain_e_per_adu"] == pytest.approx(2.37 * FACTOR)

    status = json.loads(runner.invoke(app, ["status", "--format", "json"]).output)
    alarms = status["alarms"]
    last = (NIGHT0 + dt.timedelta(days=4)).isoformat()
    assert {a["night"] for a in alarms} == {last}
    gains = {a["filter"]: a for a in alarms if a["metric"] == "gain"}
    assert set(gains) == {"g'", "i'"}
    for a in gains.values():
        # Measured on the changed night against the band of the four before it.
        assert a["n_points"] == 4 and a["value"] > a["high"]
        assert a["value"] / a["median"] == pytest.approx(FACTOR, rel=0.05)
        assert a["median"] == pytest.approx(2.37, rel=0.05)
        assert a["uncertainty"] is not None and 0 < a["uncertainty"] < 0.05 * a["value"]
    text = runner.invoke(app, ["status"]).output
    assert "open alarm(s)" in text and "gain of flat master" in text

    sent = runner.invoke(app, ["notify"])
    assert sent.exit_code == 0, sent.output
    bodies = [b for b in receiver.received if b["event"] == "alarm"]
    assert len(bodies) == len(alarms)  # one webhook per alarm, the others not wanted
    by_id = {b["payload"]["alarm"]["id"]: b for b in bodies}
    for a in gains.values():
        body = by_id[a["id"]]["payload"]["alarm"]
        assert body == {k: a[k] for k in body}
        assert f"filter {a['filter']}" in by_id[a["id"]]["text"]
    again = runner.invoke(app, ["notify"])
    assert "0 sent" in again.output and len(receiver.received) == len(bodies)  # once

    history = json.loads(runner.invoke(app, ["calib", "history", "--type", "flat",
                                             "--format", "json"]).output)
    flagged = [r for r in history if r["alarm"]]
    assert {r["night"] for r in flagged} == {last} and all(r["alarm"] == ["gain"]
                                                            for r in flagged)
    assert all(r["gain_err"] is not None for r in history)
    band = flagged[0]["bands"]["gain"]
    assert band["low"] < band["median"] < band["high"] < flagged[0]["gain"]

    report = runner.invoke(app, ["report"])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "reports" / f"{last}.html").read_text()
    assert "Detector health alarms" in page and "gain of flat master" in page
