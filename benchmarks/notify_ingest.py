"""Ingestion with a webhook that hangs, against ingestion with none, in one run.

A watch daemon catches up a folder of small frames with bad files among them (each
bad file is quarantined and queues a ``quarantined`` notification). Three runs on a
fresh SQLite catalogue each: no webhook (the reference), a webhook that answers at
once (a local HTTP server), and a webhook that accepts the connection and never
answers (each POST waits out its timeout). The figure is the catch-up time of the
last two against the first, as a ratio; target: about 1 (the notifier has its own
thread, so a hanging webhook costs ingestion nothing).

    python benchmarks/notify_ingest.py                # 300 frames, 30 bad files
    python benchmarks/notify_ingest.py --frames 100 --bad 10
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from sqlalchemy import func, select

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.settings import load_settings


def _fill(folder: Path, frames: int, bad: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(frames):
        hdu = fits.PrimaryHDU(rng.normal(1000, 10, (24, 32)).astype(np.uint16))
        hdu.header.update({"IMAGETYP": "LIGHT", "EXPTIME": 30.0, "FILTER": "R",
                           "INSTRUME": "BENCHCAM", "OBJECT": "M 101",
                           "DATE-OBS": f"2024-03-10T02:{i // 60 % 60:02d}:{i % 60:02d}"})
        hdu.writeto(folder / f"f{i:05d}.fits")
    for i in range(bad):
        (folder / f"bad{i:03d}.fits").write_text("not an image\n" * 50)


class _Quick(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _catch_up(root: Path, raw: Path, url: str | None) -> float:
    hook = (f'[[notify.webhooks]]\nurl = "{url}"\nevents = ["quarantined"]\n'
            "timeout = 2\nretries = 1\n") if url else ""
    (root / "nightlog.toml").write_text(f"[watch]\nsettle_seconds = 0\n\n{hook}")
    settings = load_settings(env={}, cwd=root)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    watcher = Watcher(engine, IngestContext.from_settings(settings, incomplete_is_error=False),
                      JobContext.from_settings(settings),
                      WatchOptions.from_settings(settings, [raw]))
    thread = threading.Thread(target=watcher.run, daemon=True)
    start = time.perf_counter()
    thread.start()
    watcher.ready_event.wait(600)
    seconds = time.perf_counter() - start
    with make_sessionmaker(engine)() as s:
        n = s.scalar(select(func.count()).select_from(Frame))
    watcher.stop.set()
    thread.join(60)
    engine.dispose()
    print(f"    {n} frames catalogued", file=sys.stderr)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--bad", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    quick = ThreadingHTTPServer(("127.0.0.1", 0), _Quick)
    threading.Thread(target=quick.serve_forever, daemon=True).start()
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)  # accepted by the kernel, never answered
    urls = {"no webhook": None,
            "quick webhook": f"http://127.0.0.1:{quick.server_address[1]}/",
            "hanging webhook": f"http://127.0.0.1:{hang.getsockname()[1]}/"}
    times: dict[str, list[float]] = {k: [] for k in urls}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for name, url in urls.items():
                root = Path(tmp) / f"{r}-{name.split()[0]}"
                raw = root / "raw"
                _fill(raw, args.frames, args.bad)
                times[name].append(_catch_up(root, raw, url))
    ref = statistics.median(times["no webhook"])
    print(f"catch-up of {args.frames} frames and {args.bad} quarantined files, "
          f"median of {args.repeat}:")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:16s} {med:7.2f} s   ratio to no webhook {med / ref:5.2f}")
    quick.shutdown()
    hang.close()


if __name__ == "__main__":
    main()
