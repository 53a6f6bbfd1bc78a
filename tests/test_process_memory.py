"""A process that runs nightlog's jobs reuses the memory it frees."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from nightlog.process_memory import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else False
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    frame = np.ones((4128, 2048), np.float32)  # a full LFC frame: 34 MB
    def job():  # temporaries of a frame's reduction: float32, uint16, bool planes
        (frame * 2.0).sum(), frame.astype(np.uint16).sum(), (frame > 1).sum()
    for _ in range(3):  # warm up: the heap grows once
        job()
    before = faults()
    for _ in range(10):
        job()
    print(kept, faults() - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_frames_after_the_first_reuse_the_pages_of_the_one_before() -> None:
    counts = {}
    for how in ("keep", "plain"):
        done = subprocess.run([sys.executable, "-c", _SCRIPT, how], capture_output=True,
                              text=True, check=True, cwd=ROOT,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        kept, faults = done.stdout.split()
        counts[how] = (kept == "True", int(faults))
    assert counts["keep"][0]
    # Handed back, each temporary comes back as fresh pages; kept, none does.
    assert counts["plain"][1] > 1000
    assert counts["keep"][1] < counts["plain"][1] / 10
