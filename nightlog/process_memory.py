"""What a job costs its process in memory: the peak resident size, job by job.

Workers report, with each frame or master they make, the peak resident memory of
the job (Linux: the ``VmHWM`` high-water mark, reset at the job's start), so a
night's memory can be followed frame by frame and a growing worker seen at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["peak_memory", "reset_peak_memory"]


def reset_peak_memory() -> bool:
    """Start a new peak-memory measurement (Linux ≥ 4.0); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory() -> int | None:
    """Peak resident memory of this process, in bytes (``None`` off POSIX).

    On Linux, since the last :func:`reset_peak_memory` (``VmHWM``): each job's own
    peak, so a worker's memory can be followed frame by frame. Elsewhere the
    process's peak since it started (``ru_maxrss``, which a spawned process also
    inherits from its parent).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
