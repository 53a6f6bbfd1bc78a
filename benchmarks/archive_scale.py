"""An archive of ten years: the catalogue's hot queries on 1,000,000 frames.

Builds a catalogue of ``--frames`` frames (default 1,000,000) spread over ten years
of nights, with each night's masters (bias, dark, two flats), a product of every
science frame linked to its three masters, the masters' input rows, the night
tally and the calibration frames waiting for a master (counted from the frames by
the catalogue), on SQLite
and (with ``--postgres``) on PostgreSQL. Rows are bulk-inserted through the
catalogue's own model tables: one frame of each kind is added with
:func:`nightlog.catalogue.frames.add_frame`, and its normalised columns are the
template of every copy. Each frame carries a stored header of ``--header-cards``
cards. Then every query of the list below runs through nightlog's library, each
timed as the median of ``--repeat`` runs in a fresh session, and printed beside its
target, with the catalogue's size on disk. Before the queries, the planner's
statistics are refreshed as ingest refreshes them after each chunk
(:func:`nightlog.catalogue.planner_statistics.refresh_statistics`).

    python benchmarks/archive_scale.py --frames 200000
    python benchmarks/archive_scale.py --frames 200000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/test

``tests/test_query_plans.py`` builds a small catalogue with :func:`build_catalogue`
and reads the query plans of :func:`hot_queries`: none scans frames or products.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive_build import (  # beside this script
    Catalogue,
    build_catalogue,
    load_catalogue,
    obs_time,
    save_catalogue,
    stored_header,
)
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from nightlog.calibration.matching import match_frame
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue import daemons as cat_daemons
from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.history import HistoryFilter, master_history
from nightlog.catalogue.listing import iter_frame_records
from nightlog.catalogue.models import Frame
from nightlog.catalogue.night_periods import period_counts
from nightlog.catalogue.night_tally import newest_tallied_nights
from nightlog.catalogue.planner_statistics import analyze_all, refresh_statistics
from nightlog.catalogue.provenance import find_product, provenance_tree
from nightlog.catalogue.queries import (
    FrameFilter,
    find_frames,
    latest_night,
    night_counts,
    night_totals,
)
from nightlog.catalogue.records import frame_record
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import find_due
from nightlog.header.model import NormalizedHeader
from nightlog.header.profiles import ProfileRegistry
from nightlog.store.layout import ArchiveLayout

__all__ = ["Catalogue", "HotQuery", "build_catalogue", "hot_queries", "ingest_rate",
           "rates_in_turn"]


@dataclass(frozen=True, slots=True)
class HotQuery:
    """One thing a user asks the catalogue, through the library, with its target."""

    name: str
    target_s: float
    run: Callable[[Session], Any]


def hot_queries(cat: Catalogue) -> list[HotQuery]:
    """The queries the issue lists, as library calls on ``cat``."""
    profile = ProfileRegistry.from_settings().get("lfc")
    policy = CalibrationPolicy()
    month = cat.last_night - dt.timedelta(days=30)
    since = dt.datetime.combine(cat.last_night - dt.timedelta(days=30), dt.time(), dt.UTC)

    def status(s: Session) -> Any:
        cat_daemons.recent_daemons(s, limit=5)
        return night_totals(s, latest_night(s) or cat.last_night)

    def nights_default(s: Session) -> Any:
        # What ``nightlog nights`` reads without options: the 30 newest nights.
        newest = newest_tallied_nights(s, 30)
        return night_counts(s, since=newest[-1], until=cat.last_night)

    def frames_night(s: Session) -> Any:
        return [frame_record(f) for f in find_frames(s, FrameFilter(night=month))]

    def frames_default(s: Session) -> Any:
        # What ``nightlog frames`` reads without options: the newest 1000 (and one to
        # know whether more are left), then the page after the last of them.
        first = list(iter_frame_records(s, FrameFilter(newest_first=True, limit=1001)))
        return list(iter_frame_records(s, FrameFilter(newest_first=True, limit=1001,
                                                      after_id=first[999]["id"])))

    def frames_kind_since(s: Session) -> Any:
        return [frame_record(f) for f in find_frames(
            s, FrameFilter(kind="science", since=since, limit=100))]

    def match(s: Session) -> Any:
        frame = s.get(Frame, cat.science_frame_id)
        assert frame is not None
        chosen = match_frame(s, frame, profile, policy)
        assert all(m.chosen is not None for m in chosen.values())
        return chosen

    def provenance(s: Session) -> Any:
        return provenance_tree(s, find_product(s, cat.product_path))

    jobs = JobContext(registry=ProfileRegistry.from_settings(), policy=policy,
                      layout=ArchiveLayout(Path(tempfile.gettempdir()) / "archive-scale"))

    def calib_build_due(s: Session) -> Any:
        return find_due(s, jobs)

    def catch_up(s: Session) -> Any:
        return cat_daemons.science_without_product(s, since=since)

    return [
        HotQuery("status", 0.2, status),
        HotQuery("nights --since (one month)", 0.2,
                 lambda s: night_counts(s, since=month, until=cat.last_night)),
        HotQuery("nights (the newest 30, its default)", 0.2, nights_default),
        HotQuery("nights --limit 0 (ten years)", 0.2,
                 lambda s: night_counts(s, newest_first=True)),
        HotQuery("nights --by month --limit 0 (ten years)", 0.2,
                 lambda s: period_counts(s, "month")),
        HotQuery("nights --by year (ten years)", 0.2, lambda s: period_counts(s, "year")),
        HotQuery("frames --night", 0.2, frames_night),
        HotQuery("frames, then --after (two pages of 1000)", 0.2, frames_default),
        HotQuery("frames --kind science --since --limit 100", 0.2, frames_kind_since),
        HotQuery("calib history --type bias (ten years)", 0.2,
                 lambda s: master_history(s, HistoryFilter(kind="bias"))),
        HotQuery("match (one frame)", 0.01, match),
        HotQuery("provenance (product by path)", 0.2, provenance),
        HotQuery("calib build: nights with new frames", 0.2, calib_build_due),
        HotQuery("watch catch-up (science without product)", 0.2, catch_up),
    ]


def ingest_rate(engine: Engine, n: int = 100, *, header_cards: int = 60) -> float:
    """Frames a second added by :func:`~nightlog.catalogue.frames.add_frame`, ``n`` new
    frames of one new night in one transaction (each looks its path up first)."""
    night = dt.date(2030, 1, 1) + dt.timedelta(days=int(uuid.uuid4().int % 1000))
    tag = uuid.uuid4().hex[:8]
    maker = make_sessionmaker(engine)
    start = time.perf_counter()
    with maker() as s, s.begin():
        for i in range(n):
            when = obs_time(night, i, n)
            norm = NormalizedHeader(profile="lfc", kind="science", raw_type="OBJECT",
                                    exptime=300.0, filter="g'", obs_time=when, night=night,
                                    shape=(4128, 2080), instrument="LFC",
                                    detector="SITe SI002 x 6")
            facts = cf.FileFacts(path=f"/raw/new-{tag}/{i}.fits",
                                 sha256=f"{tag}{i:056x}", size=1, mtime=when, hdu=0,
                                 header_json=stored_header(header_cards))
            cf.add_frame(s, facts, norm, software_version="bench")
    return n / (time.perf_counter() - start)


def rates_in_turn(engines: tuple[Engine, Engine], repeat: int, *, header_cards: int = 60
                  ) -> list[tuple[float, float]]:
    """For each catalogue (empty, full): the median rate (frames/s) of ``repeat``
    ingests of 100 frames and the median CPU time of this process per 100 frames
    (ms; SQLite's work is in it, PostgreSQL's server is not). The two are measured
    in turn, each first every other time: a single run swings by 2x on a shared
    machine, and the load drifts over the minutes a full table takes, so rates taken
    minutes apart (the empty one before the build, the full one after it) compare
    the machine's load, not the catalogues."""
    for engine in engines:
        ingest_rate(engine, 20, header_cards=header_cards)  # warm up the code paths
    rates: list[list[float]] = [[], []]
    cpu: list[list[float]] = [[], []]
    for run in range(repeat):
        for which in ((0, 1) if run % 2 == 0 else (1, 0)):
            c = time.process_time()
            rates[which].append(ingest_rate(engines[which], header_cards=header_cards))
            cpu[which].append((time.process_time() - c) * 1e3)
    return [(statistics.median(rates[i]), statistics.median(cpu[i])) for i in (0, 1)]


def _timed(engine: Engine, query: HotQuery, repeat: int) -> tuple[float, float]:
    """The median wall time and the median CPU time of this process (seconds; on
    PostgreSQL the server's work is in the wall time only) of ``repeat`` runs."""
    maker = make_sessionmaker(engine)
    times, cpu = [], []
    for _ in range(repeat):
        with maker() as s:
            t, c = time.perf_counter(), time.process_time()
            query.run(s)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return statistics.median(times), statistics.median(cpu)


def catalogue_bytes(engine: Engine, path: Path | None) -> int:
    """The catalogue's size on disk (SQLite file and its WAL; PostgreSQL relations)."""
    if path is not None:
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return int(sum(conn.scalar(select(func.pg_total_relation_size(name))) or 0
                       for name in names))


def header_bytes(engine: Engine) -> float:
    """The mean size of a frame's stored header as the database keeps it (bytes;
    PostgreSQL's after its own compression)."""
    size = (func.length(Frame.header) if engine.dialect.name == "sqlite"
            else func.pg_column_size(Frame.header))
    with engine.connect() as conn:
        return float(conn.scalar(select(func.avg(size))) or 0.0)




@dataclass
class _Target:
    name: str
    url: str
    schema: str | None
    path: Path | None


def _in_schema(url: str, schema: str) -> str:
    return f"{url}?options=-csearch_path%3D{schema}"


def _targets(args: argparse.Namespace) -> Iterator[_Target]:
    """Where each catalogue lives: a scratch folder and schema, or the folder of
    ``--keep`` or ``--reuse`` and the schema named in it."""
    kept = args.keep or args.reuse
    folder = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="archive-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    if not args.no_sqlite:
        yield _Target("SQLite", f"sqlite:///{folder / 'catalogue.sqlite'}", None,
                      folder / "catalogue.sqlite")
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        if args.reuse:
            schema = str(load_catalogue(folder / "postgresql.json")[1]["schema"])
        yield _Target("PostgreSQL", _in_schema(args.postgres, schema), schema, None)


def _kept_json(target: _Target, args: argparse.Namespace) -> Path:
    return Path(args.keep or args.reuse) / f"{target.name.lower()}.json"


@contextlib.contextmanager
def _empty_catalogue(args: argparse.Namespace, admin: Engine | None) -> Iterator[Engine]:
    """An empty, migrated catalogue of the same database (a scratch file or schema),
    whose ingest rate is measured beside the full one's."""
    from sqlalchemy.schema import CreateSchema, DropSchema

    folder = Path(tempfile.mkdtemp(prefix="archive-empty-"))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(CreateSchema(schema))
    try:
        engine = create_engine(_in_schema(args.postgres, schema) if admin is not None
                               else f"sqlite:///{folder / 'empty.sqlite'}")
        upgrade(engine)
        yield engine
        engine.dispose()
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(DropSchema(schema, cascade=True))
        shutil.rmtree(folder, ignore_errors=True)


def _build(target: _Target, args: argparse.Namespace, admin: Engine | None,
           engine: Engine) -> tuple[Catalogue, str]:
    """Build the catalogue, or read what ``--keep`` wrote of it; say which."""
    from sqlalchemy.schema import CreateSchema

    if args.reuse:
        cat, _ = load_catalogue(_kept_json(target, args))
        upgrade(engine)  # a kept catalogue takes the migrations added since
        return cat, "reused"
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(CreateSchema(target.schema))
    upgrade(engine)
    t = time.perf_counter()
    cat = build_catalogue(engine, args.frames, header_cards=args.header_cards)
    built = f"built in {time.perf_counter() - t:.0f} s"
    if args.keep:
        save_catalogue(cat, _kept_json(target, args), schema=target.schema)
    return cat, built


def _print_load() -> None:
    print(f"  cores: {os.cpu_count()}  load (1, 5, 15 min): "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


def _stream(engine: Engine) -> None:
    from archive_stream import stream_figures  # beside this script

    rows, took, peak, old_took, old_peak = stream_figures(
        engine, Path(tempfile.gettempdir()) / f"archive-scale-{uuid.uuid4().hex[:8]}.json")
    print(f"  frames --kind science --limit 0 --format json: {rows:,} rows streamed in "
          f"{took:.1f} s, peak memory +{peak:.0f} MB; as a list of catalogue rows "
          f"{old_took:.1f} s, +{old_peak:.0f} MB (time ratio {took / old_took:.2f})")


def _run(target: _Target, args: argparse.Namespace) -> None:
    from sqlalchemy.schema import DropSchema

    admin = create_engine(args.postgres) if target.schema else None
    kept = args.keep or args.reuse
    try:
        engine = create_engine(target.url)
        cat, built = _build(target, args, admin, engine)
        # What ingest does after each chunk it commits (a real archive gets its ten
        # years through ingest): analyse the tables that changed a lot.
        t = time.perf_counter()
        tables = (analyze_all if args.analyze else refresh_statistics)(engine)
        analysed = (f"{'ANALYZE of' if args.analyze else 'statistics refreshed for'} "
                    f"{len(tables)} table(s) in {time.perf_counter() - t:.1f} s")
        size = catalogue_bytes(engine, target.path)
        print(f"\n{target.name}: {cat.frames:,} frames, {cat.masters:,} masters, "
              f"{cat.products:,} products, {cat.links:,} product-master links "
              f"({built}, {analysed}); "
              f"{size / 1e9:.2f} GB on disk, {size / cat.frames / 1e3:.1f} kB a frame, "
              f"of which the stored header {header_bytes(engine) / 1e3:.1f} kB "
              f"({args.header_cards} cards)")
        _print_load()
        print(f"  {'query':<46}{'nightlog ms':>12}{'cpu ms':>8}{'target ms':>11}  ok")
        for q in hot_queries(cat):
            if args.only and not any(word in q.name for word in args.only):
                continue
            took, cpu = _timed(engine, q, args.repeat)
            ok = "yes" if took <= q.target_s else "NO"
            print(f"  {q.name:<46}{took * 1e3:>12.1f}{cpu * 1e3:>8.1f}"
                  f"{q.target_s * 1e3:>11.0f}  {ok}")
        _print_load()
        if not args.only:
            _stream(engine)
        if not args.only or "ingest" in args.only:
            with _empty_catalogue(args, admin) as empty:
                (empty_rate, empty_cpu), (full_rate, full_cpu) = rates_in_turn(
                    (empty, engine), args.repeat, header_cards=args.header_cards)
            ratio = full_rate / empty_rate
            print(f"  {'ingest 100 frames (median rate of --repeat)':<46}"
                  f"{full_rate:>9.0f}/s  empty {empty_rate:.0f}/s  ratio {ratio:.2f} "
                  f"(target >= 0.9)  {'yes' if ratio >= 0.9 else 'NO'}")
            print(f"  {'  CPU of this process per 100 frames':<46}{full_cpu:>9.0f} ms "
                  f"empty {empty_cpu:.0f} ms  ratio {empty_cpu / full_cpu:.2f}")
        engine.dispose()
    finally:
        if admin is not None:
            if not kept:
                with admin.begin() as conn:
                    conn.execute(DropSchema(target.schema, cascade=True))
            admin.dispose()
        if target.path is not None and not kept:  # gigabytes at a million frames
            shutil.rmtree(target.path.parent, ignore_errors=True)


def main() -> None:
    """Build the catalogues and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames to catalogue")
    parser.add_argument("--header-cards", type=int, default=60,
                        help="cards of each frame's stored header")
    parser.add_argument("--repeat", type=int, default=5, help="runs per query (median)")
    parser.add_argument("--analyze", action="store_true",
                        help="analyse every table after building (nightlog db analyze), "
                             "not only those nightlog's own upkeep finds changed")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--postgres", help="PostgreSQL server URL (a scratch schema is used)")
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep", metavar="DIR",
                      help="build into DIR (and a schema named there) and leave it there")
    kept.add_argument("--reuse", metavar="DIR",
                      help="time the catalogue --keep built in DIR instead of building one")
    parser.add_argument("--only", nargs="+", metavar="WORD",
                        help="time only the queries whose name holds one of the words "
                             "(no streaming; the ingest only if one word is 'ingest')")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load (1, 5, 15 min): "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    for target in _targets(args):
        _run(target, args)


if __name__ == "__main__":
    main()
