"""Is a raw file as its writer will leave it? What the bytes themselves say.

Two checks on a file that may still be arriving, both reading a few blocks only:

:func:`declared_complete`
    The file is at least as long as its FITS headers declare. A half-copied file
    is shorter.
:func:`ends_in_zero_block`
    The last data block (or the very first block) is all zero bytes. A writer
    that set the full length first (``fallocate``, ``rsync --preallocate``,
    Windows copies over SMB) and fills the file from the start leaves exactly that
    until its last write: the length is right, the end is still zeros.

**The rule for legitimate zero data.** Real frames rarely end in 2880 bytes of
zeros (1440 16-bit pixels, 720 32-bit floats; the padding after the data is not
looked at), but some do: a dead amplifier's last rows, a test pattern. Such a file
is not refused: the watch daemon takes it once it has been left unchanged, with no
writer holding it, for ``[watch] zero_tail_seconds`` (default 60 s), and a close
event does not shorten that wait. It is catalogued late, never lost.
"""

from __future__ import annotations

import os

from nightlog.errors import FileProblem, IncompleteFileError
from nightlog.store.file_kinds import open_regular
from nightlog.store.fits_layout import BLOCK, read_layout

__all__ = ["declared_complete", "ends_in_zero_block"]

_GZIP_MAGIC = b"\x1f\x8b"


def declared_complete(path: str, *, max_data_bytes: int | None = None) -> bool:
    """Whether ``path`` is at least as long as its headers declare.

    A file that is not FITS at all, not a regular file, or otherwise broken, counts
    as complete: it is ingestion's job to say what is wrong with it. Gzip files are judged by
    ingestion (their length is only known once decompressed). A data unit declared
    larger than ``max_data_bytes`` counts as complete too: waiting for it is vain,
    and ingestion refuses it.
    """
    try:
        # A FIFO or a device is never opened for a blocking read: ingestion
        # quarantines it with the reason.
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if fh.read(2) == _GZIP_MAGIC:
                return True
            read_layout(fh, size, max_data_bytes=max_data_bytes)
    except IncompleteFileError:
        return False
    except (OSError, FileProblem):
        return True
    return True


def ends_in_zero_block(path: str, *, max_data_bytes: int | None = None) -> bool:
    """Whether ``path`` looks pre-allocated and not yet filled: its first block is
    all zero bytes (nothing written yet), or the last data block (the last 2880
    bytes of its last data unit, padding excluded) is.

    ``False`` for a file without data, a gzip file, or one that cannot be walked
    for another reason (ingestion judges those).
    """
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(BLOCK)
            if head and not head.strip(b"\0"):
                return True
            if head[:2] == _GZIP_MAGIC:
                return False
            layouts = read_layout(fh, size, max_data_bytes=max_data_bytes)
            with_data = [h for h in layouts if h.data_size > 0]
            if not with_data:
                return False
            last = with_data[-1]
            n = min(BLOCK, last.data_size)
            fh.seek(last.data_offset + last.data_size - n)
            tail = fh.read(n)
    except (OSError, FileProblem):
        return False
    return len(tail) == n and not tail.strip(b"\0")
