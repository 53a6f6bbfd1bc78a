"""Ingest into a ten-year catalogue: the rate beside the empty catalogue's, and the
time of each statement the ingest issues.

Builds (or, with ``--keep``, reuses) a catalogue of ``--frames`` frames with
:func:`archive_scale.build_catalogue` in a schema of its own on PostgreSQL (or a
SQLite file), measures the rate of adding 100 new frames into an empty catalogue
and into the full one (the median of ``--repeat`` runs each, taken in turn), with
the CPU time of this process and of the server per 100 frames, and prints the
statements of one ingest of 100 frames into the full catalogue, grouped by their
text, with their total time, beside those into the empty one (the ratio shows which
grow with the catalogue).

    python benchmarks/archive_ingest.py --frames 200000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/test --keep bench_ingest
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from archive_scale import build_catalogue, ingest_rate  # beside this script
from sqlalchemy import Engine, event, text
from sqlalchemy.schema import CreateSchema, DropSchema

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.schema import upgrade


def statement_times(engine: Engine, args: argparse.Namespace) -> dict[str, list[float]]:
    """Wall time of each statement of one ingest of 100 frames, by statement text."""
    times: dict[str, list[float]] = collections.defaultdict(list)

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        times[" ".join(statement.split())[:150]].append(
            time.perf_counter() - conn.info.pop("t0"))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        ingest_rate(engine, header_cards=args.header_cards)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return times


def _backend_cpu(engine: Engine) -> float:
    """CPU seconds used so far by the server processes of this database (PostgreSQL on
    this machine; read from ``/proc``): the server's side of the work, steadier than
    wall time on a loaded machine."""
    with engine.connect() as conn:
        pids = conn.scalars(text("SELECT pid FROM pg_stat_activity "
                                 "WHERE datname = current_database()")).all()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _rates(engines: tuple[Engine, Engine], args: argparse.Namespace
           ) -> list[tuple[float, float, float]]:
    """For each catalogue (empty, full): the median rate (frames/s) of ``--repeat``
    ingests of 100 frames, and the CPU time per 100 frames of this process and of the
    server (ms; 0: not measured). The two are measured in turn, each first every other
    time, so that the machine's drift falls on both alike."""
    rates: list[list[float]] = [[], []]
    cpu, server = [0.0, 0.0], [0.0, 0.0]
    for run in range(args.repeat):
        for which in ((0, 1) if run % 2 == 0 else (1, 0)):
            engine = engines[which]
            c = time.process_time()
            b = _backend_cpu(engine) if args.postgres else 0.0
            rates[which].append(ingest_rate(engine, header_cards=args.header_cards))
            cpu[which] += time.process_time() - c
            server[which] += (_backend_cpu(engine) - b) if args.postgres else 0.0
    return [(statistics.median(rates[i]), cpu[i] * 1e3 / args.repeat,
             server[i] * 1e3 / args.repeat) for i in (0, 1)]


def main() -> None:
    """Build or reuse the catalogue, print the rates and the statements' times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames to catalogue")
    parser.add_argument("--header-cards", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5, help="ingest runs (median)")
    parser.add_argument("--postgres", help="PostgreSQL server URL (else SQLite)")
    parser.add_argument("--keep", metavar="NAME",
                        help="keep the full catalogue in this schema (PostgreSQL) or file "
                        "(SQLite) and reuse it when it exists")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load (1, 5, 15 min): "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    folder = Path(tempfile.mkdtemp(prefix="archive-ingest-"))

    def target(name: str) -> tuple[Engine, bool]:
        if args.postgres:
            admin = create_engine(args.postgres)
            with admin.begin() as conn:
                exists = conn.scalar(text("SELECT count(*) FROM information_schema.schemata "
                                          "WHERE schema_name = :n"), {"n": name})
                if not exists:
                    conn.execute(CreateSchema(name))
            admin.dispose()
            return create_engine(f"{args.postgres}?options=-csearch_path%3D{name}"), \
                bool(exists)
        path = folder / f"{name}.sqlite" if name.startswith("empty") else Path(name)
        exists = path.exists()
        return create_engine(f"sqlite:///{path}"), exists

    empty_name = f"empty_{os.getpid()}"
    empty, _ = target(empty_name)
    upgrade(empty)
    full, reused = target(args.keep or f"full_{os.getpid()}")
    upgrade(full)
    try:
        if not reused:
            t = time.perf_counter()
            build_catalogue(full, args.frames, header_cards=args.header_cards)
            print(f"built {args.frames:,} frames in {time.perf_counter() - t:.0f} s")
        for engine in (empty, full):
            ingest_rate(engine, 20, header_cards=args.header_cards)  # warm up
        (empty_rate, empty_cpu, empty_server), (full_rate, full_cpu, full_server) = (
            _rates((empty, full), args))
        print(f"ingest 100 frames: empty {empty_rate:.0f}/s, full {full_rate:.0f}/s, "
              f"ratio {full_rate / empty_rate:.2f} (target >= 0.9)")
        print(f"  CPU per 100 frames: this process empty {empty_cpu:.0f} ms, full "
              f"{full_cpu:.0f} ms (ratio {empty_cpu / full_cpu:.2f})"
              + (f"; server empty {empty_server:.0f} ms, full {full_server:.0f} ms (ratio "
                 f"{empty_server / max(full_server, 1e-9):.2f})" if args.postgres else
                 " (SQLite works in this process)"))
        on_empty, on_full = statement_times(empty, args), statement_times(full, args)
        print(f"  {'full ms':>8}{'empty ms':>9}{'n':>5}  statement")
        for stmt, took in sorted(on_full.items(), key=lambda kv: -sum(kv[1]))[:15]:
            print(f"  {sum(took) * 1e3:>8.1f}{sum(on_empty.get(stmt, [0.0])) * 1e3:>9.1f}"
                  f"{len(took):>5}  {stmt}")
    finally:
        empty.dispose()
        full.dispose()
        shutil.rmtree(folder, ignore_errors=True)
        if args.postgres:
            admin = create_engine(args.postgres)
            with admin.begin() as conn:
                conn.execute(DropSchema(empty_name, cascade=True))
                if not args.keep:
                    conn.execute(DropSchema(f"full_{os.getpid()}", cascade=True))
            admin.dispose()


if __name__ == "__main__":
    main()
