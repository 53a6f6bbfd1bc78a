"""Matching one frame against a catalogue of 10,000 masters, on SQLite and PostgreSQL.

nightlog's matching asks the database for the masters that can be valid at the
frame's time, then applies every rule to those. The reference measured in the same
run is the plain approach: load every master of the kind and instrument and apply
the rules to all of them (what ``nightlog match`` does to explain itself).
Target: under 10 ms per frame (bias, dark and flat chosen).

    python benchmarks/match.py                       # SQLite only
    python benchmarks/match.py --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, text

from nightlog.calibration.grouping import group_of
from nightlog.calibration.matching import match_frame
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.catalogue.schema import upgrade
from nightlog.header.model import NormalizedHeader
from nightlog.header.profiles import ProfileRegistry

START = dt.datetime(2016, 1, 1, 4, 0, tzinfo=dt.UTC)


def _populate(url: str, n_masters: int) -> tuple[object, list[int]]:
    engine = create_engine(url)
    upgrade(engine)
    profile = ProfileRegistry.from_settings().get("lfc")
    maker = make_sessionmaker(engine)
    frame_ids = []
    with maker() as s, s.begin():
        # Science frames spread over the years the masters cover.
        for i in range(20):
            when = START + dt.timedelta(days=180 * i + 0.3)
            norm = NormalizedHeader(profile="lfc", kind="science", raw_type="OBJECT",
                                    exptime=300.0, filter="g'" if i % 2 else "i'",
                                    obs_time=when, night=(when - dt.timedelta(hours=20)).date(),
                                    shape=(4128, 2080), instrument="LFC",
                                    detector="SITe SI002 x 6")
            facts = cf.FileFacts(path=f"/raw/s{i}.fits", sha256=f"{i:064d}", size=1,
                                 mtime=when, hdu=0, header_json=[])
            frame_ids.append(cf.add_frame(s, facts, norm, software_version="b"))
        s.flush()
        frame_ids = [f.id for f in frame_ids]  # type: ignore[attr-defined]
        like = s.get(cf.Frame, frame_ids[0])  # type: ignore[attr-defined]
        rows = []
        kinds = ("bias", "dark", "flat", "flat")
        for i in range(n_masters):
            kind = kinds[i % 4]
            mid = START + dt.timedelta(hours=24 * 3650 * i / n_masters)
            spec = group_of(like, kind, profile)
            filt = ("g'" if (i // 4) % 2 else "i'") if kind == "flat" else None
            group = spec.as_dict() | ({"filter": filt} if kind == "flat" else {})
            rows.append(dict(
                kind=kind, profile="lfc", instrument="LFC", setup_key=like.setup_key,
                group_key=f"{spec.key}|{filt}", group=group, filter=filt, set_temp=None,
                exptime=None, is_rate=kind == "dark", night=mid.date(), version=i + 1,
                path=f"/archive/m{i}.fits", sha256=f"{i:064x}", size=1,
                first_obs=mid - dt.timedelta(minutes=20), last_obs=mid + dt.timedelta(minutes=20),
                mid_time=mid, n_frames=5 + i % 7, stats={}, parameters={}, quality="good",
                created_at=mid, software_version="b"))
        s.execute(insert(Master), rows)
    return engine, frame_ids


def _time(engine: object, frame_ids: list[int], explain: bool) -> float:
    profile = ProfileRegistry.from_settings().get("lfc")
    policy = CalibrationPolicy()
    maker = make_sessionmaker(engine)  # type: ignore[arg-type]
    times = []
    with maker() as s:
        frames = [s.get(cf.Frame, i) for i in frame_ids]  # type: ignore[attr-defined]
        for _ in range(3):
            for f in frames:
                t = time.perf_counter()
                chosen = match_frame(s, f, profile, policy, explain=explain)
                times.append(time.perf_counter() - t)
                assert all(m.chosen is not None for m in chosen.values())
                s.expunge_all()
                f = s.get(cf.Frame, f.id)  # type: ignore[attr-defined]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--masters", type=int, default=10_000)
    parser.add_argument("--postgres", help="PostgreSQL server URL (a scratch schema is used)")
    args = parser.parse_args()
    targets = [("SQLite", f"sqlite:///{Path(tempfile.mkdtemp()) / 'match.sqlite'}", None)]
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        targets.append(("PostgreSQL", f"{args.postgres}?options=-csearch_path%3D{schema}",
                        schema))
    print(f"{args.masters:,} masters over ten years; median time to match one science frame "
          "(bias, dark, flat)")
    for name, url, schema in targets:
        if schema:
            admin = create_engine(args.postgres)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            engine, ids = _populate(url, args.masters)
            ours = _time(engine, ids, explain=False)
            ref = _time(engine, ids, explain=True)
            print(f"  {name:10s} nightlog {ours * 1e3:7.2f} ms   load-all-and-filter "
                  f"{ref * 1e3:8.2f} ms   ratio {ref / ours:6.1f}x   (target < 10 ms)")
            engine.dispose()  # type: ignore[attr-defined]
        finally:
            if schema:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
