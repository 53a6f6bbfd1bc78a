"""Benchmark: nightlog's stack combination against ccdproc.combine.

Simulates LFC-size frames (4128 x 2080 uint16 with BZERO 32768: bias level,
a readout gradient, read noise and cosmic rays), then for each stack size runs,
each in a fresh subprocess so its peak memory can be measured:

* nightlog ``combine(files, clip=ClipSpec(centre='mean', spread='std',
  max_iters=1))`` with a 2 GiB memory limit, and
* ``ccdproc.combine(files, method='average', sigma_clip=True)`` with ccdproc's
  defaults (thresholds 3/3, ``sigma_clip_func=np.ma.mean``,
  ``sigma_clip_dev_func=np.ma.std``, one pass, ``mem_limit=16e9``).

Both therefore run the same algorithm; the table shows wall and CPU times
(``time.process_time``: all threads of the worker, user and system) and their
ratios, peak resident memory growth (``VmHWM`` minus the resident size after
imports) and the largest difference between the two results. A last line times
a plain median of the largest stack (nightlog ``method='median'`` and numpy's
``np.median(axis=0)`` on the stack held in memory).

Usage::

    python benchmarks/combine.py                 # 6, 20, 50 full-size frames
    python benchmarks/combine.py --sizes 6,20 --scale 0.25   # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LFC_SHAPE = (4128, 2080)
ROOT = Path(__file__).resolve().parent.parent


def _simulate(folder: Path, n: int, shape: tuple[int, int], seed: int = 2024) -> list[Path]:
    """Write ``n`` bias-like uint16 frames (BZERO 32768) and return their paths."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    ny, nx = shape
    gradient = 200.0 * np.exp(-np.arange(nx) / (0.05 * nx))
    paths = []
    for i in range(n):
        frame = 1140.0 + gradient[None, :] + rng.normal(0.0, 5.5, shape)
        hits = rng.integers(0, ny * nx, size=ny * nx // 20000)
        frame.flat[hits] += rng.uniform(200, 20000, size=hits.size)
        hdu = fits.PrimaryHDU(np.clip(np.round(frame), 0, 65535).astype(np.uint16))
        hdu.header["IMAGETYP"] = "BIAS"
        path = folder / f"bias{i:03d}.fits"
        hdu.writeto(path)
        paths.append(path)
    return paths


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def _worker(kind: str, files: list[str], out: str, threads: int, limit: int) -> None:
    """Run one combination in this (fresh) process and print time and memory."""
    import numpy as np  # imported before the baseline is taken

    if kind in ("nightlog", "nightlog-median"):
        sys.path.insert(0, str(ROOT))
        # Imported before the clock starts, as ccdproc is: both sides time the
        # reading of the files and the combination, neither its imports.
        from nightlog.reduction.combine import ClipSpec, combine
        from nightlog.store.images import FrameFile
    else:
        import warnings

        import ccdproc
        from astropy.nddata import CCDData  # noqa: F401
        from astropy.utils.exceptions import AstropyUserWarning

        warnings.simplefilter("ignore", AstropyUserWarning)
    baseline = _rss_now()
    start, cpu_start = time.perf_counter(), time.process_time()
    if kind in ("nightlog", "nightlog-median"):
        loaders = [FrameFile(str(f)) for f in files]
    if kind == "nightlog":
        result = combine(loaders, method="average",
                         clip=ClipSpec(low=3, high=3, centre="mean", spread="std", max_iters=1),
                         memory_limit=limit, threads=threads).data
    elif kind == "nightlog-median":
        result = combine(loaders, method="median", memory_limit=limit, threads=threads).data
    elif kind == "numpy-median":
        from astropy.io import fits

        stack = np.empty((len(files), *fits.getdata(files[0]).shape), dtype=np.float32)
        for i, f in enumerate(files):
            stack[i] = fits.getdata(f)
        # time the median alone
        start, cpu_start = time.perf_counter(), time.process_time()
        result = np.median(stack, axis=0)
    else:
        result = ccdproc.combine(files, method="average", sigma_clip=True,
                                 sigma_clip_low_thresh=3, sigma_clip_high_thresh=3,
                                 unit="adu").data
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # VmHWM, not ru_maxrss: the latter survives exec and starts at the parent's size.
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
    np.save(out, np.asarray(result, dtype=np.float32))
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak_bytes": peak - baseline}))


def _run(kind: str, files: list[Path], out: Path, threads: int, limit: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", kind, "--out", str(out),
           "--threads", str(threads), "--memory-limit", str(limit), *map(str, files)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="6,20,50", help="stack sizes, comma separated")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="linear frame size relative to the LFC (e.g. 0.25 for a quick run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", type=int, default=2 * 1024**3)
    parser.add_argument("--workdir", default=None, help="folder for frames (default: temporary)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.files, args.out, args.threads, args.memory_limit)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    shape = (max(8, round(LFC_SHAPE[0] * args.scale)), max(8, round(LFC_SHAPE[1] * args.scale)))
    folder = Path(tempfile.mkdtemp(prefix="nightlog-bench-", dir=args.workdir))
    try:
        files = _simulate(folder, max(sizes), shape)
        # The frames just written go to disk now, not during the first timed run.
        os.sync()
        limit_mb = args.memory_limit / 2**20
        print(f"machine: {os.cpu_count()} cores, load average "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"frames {shape[0]} x {shape[1]} uint16, threads={args.threads}, "
              f"nightlog memory_limit={limit_mb:.0f} MiB")
        print(f"{'N':>3} {'nightlog s':>10} {'ccdproc s':>10} {'speed-up':>8} "
              f"{'nl CPU s':>8} {'cp CPU s':>8} {'CPU x':>6} "
              f"{'nightlog MB':>11} {'ccdproc MB':>10} {'max|diff|':>10} {'max rel':>9}")
        for n in sizes:
            ours = _run("nightlog", files[:n], folder / "ours.npy", args.threads,
                        args.memory_limit)
            theirs = _run("ccdproc", files[:n], folder / "theirs.npy", 1, args.memory_limit)
            a, b = np.load(folder / "ours.npy"), np.load(folder / "theirs.npy")
            diff = np.abs(a.astype(np.float64) - b)
            rel = float(np.nanmax(diff / np.abs(b)))
            print(f"{n:>3} {ours['seconds']:>10.2f} {theirs['seconds']:>10.2f} "
                  f"{theirs['seconds'] / ours['seconds']:>7.1f}x "
                  f"{ours['cpu']:>8.2f} {theirs['cpu']:>8.2f} "
                  f"{theirs['cpu'] / ours['cpu']:>5.1f}x "
                  f"{ours['peak_bytes'] / 2**20:>11.0f} {theirs['peak_bytes'] / 2**20:>10.0f} "
                  f"{float(np.nanmax(diff)):>10.2e} {rel:>9.2e}", flush=True)
        n = max(sizes)
        med = _run("nightlog-median", files[:n], folder / "ours.npy", args.threads,
                   args.memory_limit)
        ref = _run("numpy-median", files[:n], folder / "theirs.npy", 1, args.memory_limit)
        same = np.array_equal(np.load(folder / "ours.npy"), np.load(folder / "theirs.npy"))
        print(f"median of {n}: nightlog (from files, incl. reading) {med['seconds']:.2f} s, "
              f"{med['peak_bytes'] / 2**20:.0f} MB; numpy np.median(axis=0) on the stack in "
              f"memory (median only) {ref['seconds']:.2f} s, {ref['peak_bytes'] / 2**20:.0f} MB; "
              f"ratio {ref['seconds'] / med['seconds']:.1f}x (CPU {med['cpu']:.2f} s, "
              f"{ref['cpu']:.2f} s, {ref['cpu'] / med['cpu']:.1f}x); identical={same}")
        print("load average at the end " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
