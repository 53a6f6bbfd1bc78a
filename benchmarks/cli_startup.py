"""How fast each command starts: ``nightlog <command>`` beside ``python -c pass``.

A command's start is the time from launching the process to the point where it
would begin its work: the imports of the root and of the command's own modules,
measured as ``nightlog <command> --help`` (which parses the command line and
exits). ``--version`` and ``--help`` are timed as they are. Each figure is the
median of ``--repeat`` runs; the reference is the interpreter starting and doing
nothing. Target: every listed command ≤ 0.3 s.

    python benchmarks/cli_startup.py [--repeat 7]

For where the time goes: ``python -X importtime -m nightlog --version``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TARGET_S = 0.3
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--version",), ("--help",), ("status", "--help"), ("frames", "--help"),
    ("nights", "--help"), ("match", "--help"), ("calib", "--help"), ("reduce", "--help"),
)


def _wall(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the start time of each command, the reference and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per command (median)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load (1, 5, 15 min): "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    reference = _wall([sys.executable, "-c", "pass"], args.repeat)
    print(f"{'command':<24}{'nightlog s':>12}{'python -c pass s':>18}{'ratio':>8}"
          f"{'target s':>10}  ok")
    for command in COMMANDS:
        wall = _wall([sys.executable, "-m", "nightlog", *command], args.repeat)
        listed = command[0] in ("--version", "--help", "status", "frames", "nights", "match")
        ok = ("yes" if wall <= TARGET_S else "NO") if listed else "-"
        print(f"{' '.join(command):<24}{wall:>12.3f}{reference:>18.3f}{wall / reference:>8.1f}"
              f"{TARGET_S if listed else float('nan'):>10.1f}  {ok}")


if __name__ == "__main__":
    main()
