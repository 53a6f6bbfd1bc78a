"""What a job costs its process in memory: the peak resident size, job by job.

Workers report, with each frame or master they make, the peak resident memory of
the job (Linux: the ``VmHWM`` high-water mark, reset at the job's start), so a
night's memory can be followed frame by frame and a growing worker seen at once.

A process that reduces frames keeps the memory it frees (:func:`keep_freed_memory`):
glibc hands every block of 32 MiB or more (a full LFC frame in float32 is 34 MB)
to the kernel on ``free`` and takes fresh zeroed pages for the next, so each frame
paid some 90,000 page faults (350 MB). On a virtual machine whose host reclaims idle
memory each fault costs tens of microseconds: a frame's job took 7.6 s wall, 4.6 s
of it in the kernel, against 2.6 s once the frames' blocks are reused.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

__all__ = ["keep_freed_memory", "peak_memory", "reset_peak_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_KEEP = 2**31 - 1  # bytes: the largest threshold mallopt takes (an int)
_PAD = 64 * 1024**2  # bytes the heap grows by beyond a request


def keep_freed_memory() -> bool:
    """Make this process reuse the memory it frees instead of giving it back to the
    kernel (glibc: no block by ``mmap``, no trimming of the heap's top).

    Called by the processes that run nightlog's jobs (local workers as they start,
    the process of an in-process executor). Their resident size then stays at its
    peak between jobs, which the memory limits already plan for; every later frame
    reuses the pages of the one before. Elsewhere (not glibc) nothing changes.

    Returns
    -------
    bool
        Whether the allocator took the settings.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _KEEP)
                and mallopt(_M_TOP_PAD, _PAD))


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
