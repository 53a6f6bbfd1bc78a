"""Live latency: a simulated night replayed into a watched folder.

A night of the LFC is simulated once, then copied frame by frame, in time order,
into a folder a ``nightlog watch`` daemon follows (a real watchdog observer, a
fresh SQLite catalogue, quick-looks on). Each file is written the way a slow copy
does it, in pieces with pauses, and the moment its last byte is written and the
file closed is its *complete* time. Two figures per run, median and 95th
percentile:

- complete → catalogued (the frame's ``ingested_at``); target: median under the
  settle time + 0.5 s when only the settle rule applies;
- complete → quick-look product written (science frames, product ``created_at``).

Runs: first with each science frame landing on an idle daemon (every earlier file
catalogued, its masters built, the quick-looks made: a science exposure lasts
minutes), which measures a quick-look's own latency (target at full size: ≤ 2 s
after the file is complete); then at the camera's pace (one frame every
``--interval`` seconds: exposures are compressed, the order and the mix of the
night are kept) and faster (``--fast``
seconds between frames, a burst), each with close-write events used (the Linux
default: a closed complete file is taken at once) and with the settle rule alone
(what a network share without events, or a writer that closes early, gets).

    python benchmarks/live.py                       # about two minutes
    python benchmarks/live.py --scale 0.05 --science 4 --interval 0.5
    python benchmarks/live.py --scale 1 --science 4 --interval 4   # full-size frames
    python benchmarks/live.py --scale 1 --science 4 --idle-only    # the quick-look alone
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from astropy.io import fits
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame, Product
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.settings import load_settings
from nightlog.simulate import simulate_night

#: Issue #17: a full-size quick-look at most this long after its file is complete.
QUICKLOOK_TARGET = 2.0


def _night(folder: Path, scale: float, science: int) -> list[Path]:
    simulate_night(folder, camera="lfc", scale=scale, seed=11, n_bias=7, n_dark=5, n_flat=5,
                   n_science=science)
    files = sorted(folder.rglob("*.fits"))
    return sorted(files, key=lambda p: str(fits.getval(p, "DATE-OBS")))


def _copy_slowly(src: Path, dst: Path, pieces: int, pause: float) -> float:
    data = src.read_bytes()
    step = len(data) // pieces + 1
    with open(dst, "wb") as fh:
        for i in range(pieces):
            fh.write(data[i * step:(i + 1) * step])
            fh.flush()
            if i < pieces - 1:
                time.sleep(pause)
    return time.time()


def _percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def _idle(watcher: Watcher, sessions: sessionmaker[Session], written: int,
          science: int, limit: float = 300.0) -> None:
    """Wait until the daemon has nothing left to do: every file written so far
    catalogued, every science frame's quick-look made, no build armed, nothing queued."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if watcher.backlog == 0 and not watcher.live.build_armed:
            with sessions() as s:
                n_frames = s.scalar(select(func.count()).select_from(Frame)) or 0
                n_products = s.scalar(select(func.count()).select_from(Product)) or 0
            if n_frames >= written and n_products >= science:
                return
        time.sleep(0.05)
    raise RuntimeError("the daemon did not become idle")


def _run(files: list[Path], *, interval: float, settle: float, close_events: bool,
         pieces: int, pause: float, science: frozenset[Path] = frozenset(),
         idle_science: bool = False) -> dict[str, tuple[float, float, int]]:
    with tempfile.TemporaryDirectory(prefix="nightlog-live-") as tmp:
        root = Path(tmp)
        watched = root / "incoming"
        watched.mkdir()
        (root / "nightlog.toml").write_text(
            f"[watch]\nsettle_seconds = {settle}\nbuild_delay_seconds = 1.0\n"
            "quicklook = true\nheartbeat_seconds = 5\n")
        settings = load_settings(root / "nightlog.toml", env={}, cwd=root)
        engine = create_engine(settings.database_url)
        upgrade(engine)
        options = WatchOptions.from_settings(settings, [watched], close_events=close_events)
        watcher = Watcher(engine, IngestContext.from_settings(settings,
                                                              incomplete_is_error=False),
                          JobContext.from_settings(settings), options)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        watcher.ready_event.wait(30)
        complete: dict[str, float] = {}
        sessions = make_sessionmaker(engine)
        start = time.time()
        science_written = 0
        for i, src in enumerate(files):
            if idle_science and src in science:
                # A science exposure lasts minutes: the daemon has caught up when it lands.
                _idle(watcher, sessions, i, science_written)
                time.sleep(0.5)
                start = time.time() - i * interval
                science_written += 1
            target = start + i * interval
            if (wait := target - time.time()) > 0:
                time.sleep(wait)
            dst = watched / src.name
            complete[str(dst)] = _copy_slowly(src, dst, pieces, pause)
        deadline = time.time() + 120
        while time.time() < deadline:
            with sessions() as s:
                n_frames = s.scalar(select(Frame.id).order_by(Frame.id.desc()).limit(1)) or 0
                n_science = len(list(s.scalars(select(Frame.id).where(
                    Frame.kind == "science"))))
                n_products = len(list(s.scalars(select(Product.id))))
            if n_frames >= len(files) and n_products >= n_science:
                break
            time.sleep(0.2)
        watcher.stop.set()
        thread.join(60)
        with sessions() as s:
            frames = list(s.scalars(select(Frame)))
            products = {p.frame_id: p for p in s.scalars(select(Product))}
        engine.dispose()
    ingest = [(f.ingested_at.timestamp() - complete[f.path]) for f in frames]
    quick = [(products[f.id].created_at.timestamp() - complete[f.path]) for f in frames
             if f.kind == "science" and f.id in products]
    science_in = [(f.ingested_at.timestamp() - complete[f.path]) for f in frames
                  if f.kind == "science"]
    figures = {"catalogued": (*_percentiles(ingest), len(ingest))}
    if idle_science:  # the quick-look's latency: the catalogue's share, then its own
        figures["science catalogued"] = (*_percentiles(science_in), len(science_in))
    figures["quick-look"] = (*_percentiles(quick), len(quick))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="frame size factor")
    parser.add_argument("--science", type=int, default=10, help="science frames")
    parser.add_argument("--interval", type=float, default=1.5,
                        help="seconds between frames at the camera's pace")
    parser.add_argument("--fast", type=float, default=0.05,
                        help="seconds between frames when faster than the camera")
    parser.add_argument("--settle", type=float, default=1.0, help="settle time (s)")
    parser.add_argument("--pieces", type=int, default=4, help="writes per file")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between writes")
    parser.add_argument("--idle-only", action="store_true",
                        help="only the idle-daemon run (the quick-look's own latency)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nightlog-night-") as tmp:
        night = Path(tmp) / "night"
        files = _night(night, args.scale, args.science)
        size = sum(f.stat().st_size for f in files) / len(files)
        one, five, _ = os.getloadavg()
        print(f"{len(files)} LFC frames of {size / 1e6:.2f} MB, written in {args.pieces} "
              f"pieces {args.pause} s apart; settle time {args.settle} s; "
              f"{dt.datetime.now():%Y-%m-%d %H:%M}; load {one:.1f} (1 min) {five:.1f} "
              f"(5 min) on {os.cpu_count()} cores; quick-looks without cosmic rays")
        target = args.settle + 0.5
        print(f"{'pace':>22} {'completeness':>14} {'figure':>11} {'median':>8} {'p95':>8} "
              f"{'n':>4}  target (median)")
        science = frozenset(f for f in files
                            if str(fits.getval(f, "IMAGETYP")).strip().lower()
                            in ("object", "science", "light"))
        runs = [("idle daemon", args.interval, "close-write", True, True)]
        if not args.idle_only:
            runs += [(pace, interval, mode, events, False)
                     for pace, interval in (("camera", args.interval), ("faster", args.fast))
                     for mode, events in (("close-write", True), ("settle only", False))]
        for pace_name, interval, mode, close_events, idle in runs:
            got = _run(files, interval=interval, settle=args.settle,
                       close_events=close_events, pieces=args.pieces, pause=args.pause,
                       science=science, idle_science=idle)
            for figure, (median, p95, n) in got.items():
                verdict = ""
                if figure == "catalogued":
                    verdict = f"< {target:.1f} s: {'met' if median < target else 'MISSED'}"
                elif idle and figure == "quick-look":
                    verdict = (f"<= {QUICKLOOK_TARGET:g} s: "
                               f"{'met' if median <= QUICKLOOK_TARGET else 'MISSED'}")
                print(f"{pace_name + f' ({interval:g} s)':>22} {mode:>14} {figure:>11} "
                      f"{median:7.2f}s {p95:7.2f}s {n:>4}  {verdict}")
            sys.stdout.flush()
        print(f"load {os.getloadavg()[0]:.1f} (1 min) at the end")
        shutil.rmtree(night, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
