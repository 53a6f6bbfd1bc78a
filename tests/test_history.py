"""The calibration history: the robust outlier rule, the query, and ``nightlog calib
history`` (table, JSON, CSV, filters, plot) on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import median_abs_deviation
from sqlalchemy import Engine
from typer.testing import CliRunner

from nightlog.calibration.trends import robust_outliers
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.cli.app import app

# --- the outlier rule ---------------------------------------------------------------


@given(level=st.integers(-10**6, 10**6), offset=st.integers(-10**6, 10**6).filter(bool),
       n=st.integers(5, 40), data=st.data())
def test_one_far_point_in_a_constant_series_is_the_only_outlier(level: int, offset: int,
                                                                n: int, data: Any) -> None:
    far = data.draw(st.integers(0, n - 1))
    values: list[float | None] = [float(level)] * n
    values[far] = float(level + offset)
    assert robust_outliers(values) == [i == far for i in range(n)]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4))
def test_short_series_flag_nothing(values: list[float]) -> None:
    assert robust_outliers(values) == [False] * len(values)  # fewer than 5 points


@given(st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=30),
       st.lists(st.integers(0, 30), max_size=5))
def test_missing_values_are_neither_counted_nor_flagged(values: list[float],
                                                        holes: list[int]) -> None:
    with_holes: list[float | None] = list(values)
    for at in sorted(holes, reverse=True):
        with_holes.insert(min(at, len(with_holes)), None)
    flags = robust_outliers(with_holes)
    assert [f for v, f in zip(with_holes, flags, strict=True) if v is None] == \
        [False] * len(holes)
    assert [f for v, f in zip(with_holes, flags, strict=True) if v is not None] == \
        robust_outliers(values)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("k", [3.0, 4.0, 6.0])
def test_agrees_with_scipy_mad(seed: int, k: float) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(1000.0, 3.0, rng.integers(5, 60))
    far = rng.choice(values.size, size=min(3, values.size // 4), replace=False)
    values[far] += rng.choice([-1.0, 1.0], far.size) * rng.uniform(5.0, 40.0, far.size)
    reference = np.abs(values - np.median(values)) > k * median_abs_deviation(values,
                                                                              scale="normal")
    assert robust_outliers(list(values), k=k) == list(reference)


def test_worked_example() -> None:
    # median 10; deviations 0, 1, 1, 0, 0, 20; MAD 0.5 → σ = 0.741; 4σ = 2.97 < 20 < 30σ.
    series: list[float | None] = [10.0, 11.0, 9.0, 10.0, 10.0, 30.0]
    assert robust_outliers(series) == [False] * 5 + [True]
    assert robust_outliers(series, k=30.0) == [False] * 6
    assert robust_outliers(series, min_points=7) == [False] * 6
    with pytest.raises(ValueError):
        robust_outliers(series, k=-1.0)


# --- a catalogue with masters over several nights ----------------------------------

NIGHT0 = dt.date(2024, 3, 1)
GROUPS = {
    ("bias", "CAM1", None): "bias|generic|instrument=CAM1|binning=1x1",
    ("bias", "CAM2", None): "bias|generic|instrument=CAM2|binning=1x1",
    ("dark", "CAM1", None): "dark|generic|instrument=CAM1|binning=1x1|set_temp=-20",
    ("flat", "CAM1", "g'"): "flat|generic|instrument=CAM1|binning=1x1|filter=g'",
    ("flat", "CAM1", "r'"): "flat|generic|instrument=CAM1|binning=1x1|filter=r'",
}


@dataclass
class Catalogue:
    url: str
    masters: dict[str, Master]  # by a name used in the tests
    stats: dict[int, dict[str, Any]]  # master id → the stats it was stored with


def _stats(kind: str, level: float, rng: np.random.Generator, **extra: Any) -> dict[str, Any]:
    """Stats with the keys the master builder writes (coordinator/masters.py)."""
    stats: dict[str, Any] = {
        "level": level, "noise": float(rng.uniform(1, 3)), "hot_pixels": int(rng.integers(9)),
        "low_pixels": 0, "frame_levels": [level] * 5, "rejected": 0,
        "masters_used": {"bias": None} if kind != "bias" else {},
    }
    if kind == "bias":
        rn = float(rng.normal(5.0, 0.05))
        stats.update(read_noise_adu=rn, read_noise_e=rn * 1.6)
    elif kind == "dark":
        stats["dark_current_e_per_s"] = level * 1.6
    else:
        stats["gain_from_flats"] = float(rng.normal(1.6, 0.01))
    stats.update(extra)
    return stats


def _master(kind: str, instrument: str, filt: str | None, night: dt.date,
            stats: dict[str, Any], *, version: int = 1, quality: str = "good") -> Master:
    key = GROUPS[(kind, instrument, filt)]
    mid = dt.datetime.combine(night, dt.time(4, 0), dt.UTC) + dt.timedelta(days=1,
                                                                          minutes=version)
    return Master(
        kind=kind, profile="generic", instrument=instrument, setup_key=f"{instrument}|1x1",
        group_key=key, group={"instrument": instrument, "binning": "1x1",
                              **({"filter": filt} if filt else {})},
        filter=filt, set_temp=-20.0, exptime=None, is_rate=kind == "dark", night=night,
        version=version, path=f"/archive/{kind}/{key}/{night}/v{version}.fits",
        sha256="f" * 64, size=1,
        first_obs=mid - dt.timedelta(minutes=20), last_obs=mid + dt.timedelta(minutes=20),
        mid_time=mid, n_frames=7, stats=stats, parameters={}, quality=quality,
        quality_reason="light leak" if quality == "bad" else None, created_at=mid,
        software_version="t",
    )


@pytest.fixture
def catalogue(catalogue_engine: Engine, catalogue_url: str) -> Catalogue:
    rng = np.random.default_rng(7)
    named: dict[str, Master] = {}
    rows: list[Master] = []
    with make_sessionmaker(catalogue_engine)() as session, session.begin():
        for i in range(9):
            night = NIGHT0 + dt.timedelta(days=i)
            level = 1000.0 + float(rng.normal(0, 0.5))
            if i == 5:
                level = 1060.0  # the outlier
            m = _master("bias", "CAM1", None, night, _stats("bias", level, rng))
            rows.append(m)
            named[f"bias{i}"] = m
        # Night 3 was rebuilt: version 1 is superseded by version 2.
        named["bias3_v2"] = _master("bias", "CAM1", None, NIGHT0 + dt.timedelta(days=3),
                                    _stats("bias", 1000.2, rng), version=2)
        # Night 7 was marked bad (and is far off: it must not count, nor be marked).
        named["bias7"].quality, named["bias7"].quality_reason = "bad", "light leak"
        named["bias7"].stats = _stats("bias", 1300.0, rng)
        for i in (2, 6):
            m = _master("bias", "CAM2", None, NIGHT0 + dt.timedelta(days=i),
                        _stats("bias", 500.0 + i, rng))
            rows.append(m)
            named[f"cam2_bias{i}"] = m
        for i in range(6):
            night = NIGHT0 + dt.timedelta(days=i)
            for filt in ("g'", "r'"):
                extra = {"gain_from_flats": None, "characterisation_error": "no bias"} \
                    if (i, filt) == (4, "r'") else {}
                m = _master("flat", "CAM1", filt, night,
                            _stats("flat", float(rng.uniform(15000, 30000)), rng, **extra))
                rows.append(m)
                named[f"flat{i}{filt[0]}"] = m
            m = _master("dark", "CAM1", None, night,
                        _stats("dark", 0.02 + float(rng.normal(0, 0.001)), rng))
            rows.append(m)
            named[f"dark{i}"] = m
        session.add_all([*rows, named["bias3_v2"]])
        session.flush()
        named["bias3"].superseded_by_id = named["bias3_v2"].id
        session.flush()
        stats = {m.id: dict(m.stats) for m in named.values()}
        session.expunge_all()
    return Catalogue(catalogue_url, named, stats)


@pytest.fixture
def run(catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", catalogue.url)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def _run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["calib", "history", *args])
        assert result.exit_code == code, result.output
        return result.stdout

    return _run


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in rows]


def _in_time_order(cat: Catalogue, *names: str) -> list[int]:
    chosen = sorted((cat.masters[n] for n in names), key=lambda m: (m.mid_time, m.id))
    return [m.id for m in chosen]


BIAS_METRICS = {"bias_level": "level", "read_noise_adu": "read_noise_adu",
                "read_noise_e": "read_noise_e"}


def test_json_has_one_point_per_master_in_use_with_its_stats(run, catalogue: Catalogue
                                                              ) -> None:  # type: ignore[no-untyped-def]
    rows = json.loads(run("--type", "bias", "--format", "json"))
    names = [f"bias{i}" for i in range(9) if i != 3] + ["bias3_v2", "cam2_bias2", "cam2_bias6"]
    assert _ids(rows) == _in_time_order(catalogue, *names)  # no superseded version
    for row in rows:
        stats = catalogue.stats[row["id"]]
        for column, key in BIAS_METRICS.items():
            assert row[column] == stats[key]
    by_id = {r["id"]: r for r in rows}
    bad = by_id[catalogue.masters["bias7"].id]
    assert (bad["quality"], bad["quality_reason"], bad["outlier"]) == ("bad", "light leak", [])
    assert by_id[catalogue.masters["bias5"].id]["outlier"] == ["bias_level"]
    # The marks are those of an independent MAD computed per group on masters in use.
    for instrument in ("CAM1", "CAM2"):
        mine = [r for r in rows if r["instrument"] == instrument and r["quality"] == "good"]
        for column in BIAS_METRICS:
            x = np.array([r[column] for r in mine])
            far = np.abs(x - np.median(x)) > 4 * median_abs_deviation(x, scale="normal")
            expected = far if len(mine) >= 5 else np.zeros(len(mine), bool)
            assert [column in r["outlier"] for r in mine] == list(expected)


def test_all_versions_shows_superseded_masters_unmarked(run, catalogue: Catalogue
                                                        ) -> None:  # type: ignore[no-untyped-def]
    rows = json.loads(run("--type", "bias", "--all-versions", "--format", "json"))
    old = next(r for r in rows if r["id"] == catalogue.masters["bias3"].id)
    assert old["superseded_by"] == catalogue.masters["bias3_v2"].id
    assert old["outlier"] == [] and old["version"] == 1
    assert len(rows) == 12


def test_filters(run, catalogue: Catalogue) -> None:  # type: ignore[no-untyped-def]
    cam2 = json.loads(run("--type", "bias", "--instrument", "CAM2", "--format", "json"))
    assert _ids(cam2) == _in_time_order(catalogue, "cam2_bias2", "cam2_bias6")
    window = json.loads(run("--type", "bias", "--instrument", "CAM1", "--since", "2024-03-03",
                            "--until", "2024-03-05", "--format", "json"))
    assert _ids(window) == _in_time_order(catalogue, "bias2", "bias3_v2", "bias4")
    assert {r["night"] for r in window} == {"2024-03-03", "2024-03-04", "2024-03-05"}
    red = json.loads(run("--type", "flat", "--filter", "r'", "--format", "json"))
    assert _ids(red) == _in_time_order(catalogue, *(f"flat{i}r" for i in range(6)))
    for row in red:
        stats = catalogue.stats[row["id"]]
        assert (row["flat_level"], row["gain"]) == (stats["level"], stats["gain_from_flats"])
    darks = json.loads(run("--type", "dark", "--format", "json"))
    assert _ids(darks) == _in_time_order(catalogue, *(f"dark{i}" for i in range(6)))
    for row in darks:
        stats = catalogue.stats[row["id"]]
        assert (row["dark_rate"], row["dark_current"]) == \
            (stats["level"], stats["dark_current_e_per_s"])
    assert json.loads(run("--type", "dark", "--instrument", "CAM2", "--format", "json")) == []
    run("--type", "bias", "--since", "2024-03-05", "--until", "2024-03-01", code=4)
    run("--type", "fringe", code=2)


def test_csv_and_table_carry_the_same_values(run, catalogue: Catalogue
                                             ) -> None:  # type: ignore[no-untyped-def]
    rows = json.loads(run("--type", "bias", "--format", "json"))
    table = list(csv.DictReader(io.StringIO(run("--type", "bias", "--format", "csv"))))
    assert [int(r["id"]) for r in table] == _ids(rows)
    for row in table:
        stats = catalogue.stats[int(row["id"])]
        for column, key in BIAS_METRICS.items():
            assert float(row[column]) == stats[key]
    outlier = next(r for r in table if int(r["id"]) == catalogue.masters["bias5"].id)
    assert outlier["outlier"] == "bias_level"
    text = run("--type", "bias")
    # Cells are separated by at least two spaces; a row starts with its id.
    lines = {cells[0]: cells for line in text.splitlines()
             if (cells := re.split(r"\s{2,}", line.strip())) and cells[0].isdigit()}
    for row in rows:
        cells = lines[str(row["id"])]
        for column in (*BIAS_METRICS, "quality", "night"):
            assert (f"{row[column]:g}" if isinstance(row[column], float) else row[column]) \
                in cells
        # The alarms (against the band before) and the outliers, where there are any.
        for marks in (row["alarm"], row["outlier"]):
            if marks:
                assert ";".join(marks) in cells


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("kind", "panels"), [("bias", 3), ("flat", 2), ("dark", 3)])
def test_plot_writes_a_png(run, tmp_path: Path, kind: str, panels: int
                           ) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.image

    out = tmp_path / "plots" / f"{kind}.png"
    rows = json.loads(run("--type", kind, "--plot", str(out), "--format", "json"))
    assert rows  # the plot does not disturb the JSON on stdout
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(out)
    # 10 in wide at 100 dpi; 1 in for titles plus 2.4 in per metric panel.
    assert image.shape[:2] == (100 + 240 * panels, 1000)
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary left


def test_plot_of_nothing_and_wrong_suffix(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.image

    out = tmp_path / "none.png"
    run("--type", "dark", "--instrument", "NOPE", "--plot", str(out))
    assert matplotlib.image.imread(out).shape[:2] == (340, 1000)  # one empty panel
    run("--type", "bias", "--plot", str(tmp_path / "bias.pdf"), code=2)


def test_matplotlib_is_not_imported_by_the_cli() -> None:
    code = "import sys, nightlog.cli.app; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
