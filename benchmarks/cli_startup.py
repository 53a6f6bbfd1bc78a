"""How fast each command starts: ``nightlog <command>`` beside ``python -c pass``.

A command's start is the time from launching the process to the point where it
would begin its work: the imports of the root and of the command's own modules,
measured as ``nightlog <command> --help`` (which parses the command line and
exits). ``--version`` and ``--help`` are timed as they are. The listing commands
are also run whole on an empty catalogue (SQLite, made here): their start, the
settings, the catalogue's engine and schema check and the first queries.

Each figure is the median of ``--repeat`` runs: the wall time, and the CPU time
of the process (user and system, steadier on a shared machine); the reference
is the interpreter starting and doing nothing, measured in the same run.
Target: every listed command's ``--help`` (and ``--version``, ``--help``) ≤ 0.3 s.

    python benchmarks/cli_startup.py [--repeat 7]

For where the time goes: ``python -X importtime -m nightlog status --help``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.3
LISTED = ("--version", "--help", "status", "frames", "nights", "match")
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--version",), ("--help",), ("status", "--help"), ("frames", "--help"),
    ("nights", "--help"), ("match", "--help"), ("calib", "--help"), ("reduce", "--help"),
)
#: Run whole on an empty catalogue.
RUNS: tuple[tuple[str, ...], ...] = (("status",), ("frames",), ("nights",))


def _measure(argv: list[str], repeat: int, cwd: Path | None = None) -> tuple[float, float]:
    """Median wall and CPU seconds of ``argv`` (the child's user + system time)."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=cwd)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _row(label: str, figures: tuple[float, float], reference: tuple[float, float],
         listed: bool) -> str:
    (wall, cpu), (ref_wall, ref_cpu) = figures, reference
    ok = ("yes" if wall <= TARGET_S else "NO") if listed else "-"
    target = f"{TARGET_S:.1f}" if listed else "-"
    return (f"{label:<22}{wall:>8.3f}{ref_wall:>8.3f}{wall / ref_wall:>7.1f}"
            f"{cpu:>8.3f}{ref_cpu:>8.3f}{cpu / ref_cpu:>7.1f}{target:>8}  {ok}")


def main() -> None:
    """Print each command's start (wall and CPU), the reference's and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per command (median)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load (1, 5, 15 min): "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    reference = _measure([sys.executable, "-c", "pass"], args.repeat)
    print(f"{'command':<22}{'wall s':>8}{'ref s':>8}{'ratio':>7}{'cpu s':>8}{'ref s':>8}"
          f"{'ratio':>7}{'target':>8}  ok   (ref: python -c pass)")
    nightlog = [sys.executable, "-m", "nightlog"]
    for command in COMMANDS:
        print(_row(" ".join(command), _measure([*nightlog, *command], args.repeat), reference,
                   command[0] in LISTED), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        (where / "nightlog.toml").write_text(
            f'[database]\nurl = "sqlite:///{where / "catalogue.sqlite"}"\n')
        subprocess.run([*nightlog, "db", "upgrade"], check=True, cwd=where,
                       stdout=subprocess.DEVNULL)
        for command in RUNS:
            print(_row(" ".join(command) + " (run)", _measure([*nightlog, *command],
                                                              args.repeat, where),
                       reference, False), flush=True)
    print("load (1, 5, 15 min) at the end: "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
