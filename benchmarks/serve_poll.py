"""What a live page costs the catalogue: the poll beside the page it saves.

Every open page of ``nightlog serve`` asks ``/api/pulse`` every 1.5 s; only when
the change mark moves does it fetch the whole night page again. This script
builds a catalogue of ``--frames`` frames over years of nights (the builder of
``benchmarks/archive_scale.py``) and times, as medians of ``--repeat`` runs in
fresh sessions, through nightlog's own functions:

- the poll: :func:`nightlog.catalogue.live.change_mark` of the newest night;
- the reference, measured in the same run: the data of the night page
  (:func:`nightlog.web.live_data.night_view`) and its HTML
  (:func:`nightlog.web.pages.night_page`), which a page that simply reloaded
  every 1.5 s would cost;

and prints the ratio, and the load one open page puts on the catalogue (poll
time / poll interval). On SQLite, and with ``--postgres`` on PostgreSQL too.

    python benchmarks/serve_poll.py --frames 100000
    python benchmarks/serve_poll.py --frames 100000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from archive_build import build_catalogue

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.live import change_mark
from nightlog.catalogue.schema import upgrade
from nightlog.web import live_data, pages
from nightlog.web.app import POLL_SECONDS


def _median(engine: Any, fn: Callable[[Any], Any], repeat: int) -> float:
    maker = make_sessionmaker(engine)
    times = []
    for _ in range(repeat):
        with maker() as session:
            t = time.perf_counter()
            fn(session)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _run(name: str, url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
        cat = build_catalogue(engine, args.frames)
        now = dt.datetime.now(dt.UTC)
        poll = _median(engine, lambda s: change_mark(s, now=now), args.repeat)
        data = _median(engine, lambda s: live_data.night_view(s, None, now), args.repeat)
        page = _median(engine, lambda s: pages.night_page(
            live_data.night_view(s, None, now), tonight=True), args.repeat)
        with make_sessionmaker(engine)() as s:
            frames = len(live_data.night_view(s, None, now)["frames"])
        print(f"\n{name}: {cat.frames:,} frames, {cat.masters:,} masters, "
              f"{cat.products:,} products; the newest night holds {frames} frames")
        print(f"  {'what':<44}{'ms':>9}")
        print(f"  {'poll: change mark (nightlog)':<44}{poll * 1e3:>9.2f}")
        print(f"  {'reference: night page data':<44}{data * 1e3:>9.2f}")
        print(f"  {'reference: night page data + HTML':<44}{page * 1e3:>9.2f}")
        print(f"  page / poll ratio: {page / poll:.1f}; one open page keeps the catalogue "
              f"busy {100 * poll / POLL_SECONDS:.3f} % of the time "
              f"(reloading the page instead: {100 * page / POLL_SECONDS:.2f} %)")
    finally:
        engine.dispose()


def main() -> None:
    """Build the catalogues and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames to catalogue")
    parser.add_argument("--repeat", type=int, default=21, help="runs per figure (median)")
    parser.add_argument("--postgres", help="PostgreSQL server URL (a scratch schema is used)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load (1, 5, 15 min): "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    folder = Path(tempfile.mkdtemp(prefix="serve-poll-"))
    _run("SQLite", f"sqlite:///{folder / 'catalogue.sqlite'}", args)
    if args.postgres:
        from sqlalchemy.schema import CreateSchema, DropSchema

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(CreateSchema(schema))
        try:
            _run("PostgreSQL", f"{args.postgres}?options=-csearch_path%3D{schema}", args)
        finally:
            with admin.begin() as conn:
                conn.execute(DropSchema(schema, cascade=True))
            admin.dispose()


if __name__ == "__main__":
    main()
