"""Thumbnails for the live view, made once per file and kept on disk.

A picture is made by the night report's code
(:func:`nightlog.report.thumbnails.zscale_thumbnail`: block mean, zscale, row 0
at the bottom) and kept under ``<archive>/cache/thumbnails/`` by a name made of
the checksum the catalogue records for the file, its HDU, the picture size and
the file's size and modification time as it is now, so a file rewritten under
the same name gets a new picture. Each appears under its final name only when
complete. When the cache folder cannot be written the picture is made again on
each request, and a warning says so once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

from nightlog.errors import NightlogError, StoreError
from nightlog.report.thumbnails import DEFAULT_SIZE, zscale_thumbnail
from nightlog.store.atomic import write_atomically
from nightlog.store.compression import COMPRESSED_SUFFIX
from nightlog.store.images import read_image

__all__ = ["ThumbnailCache", "ThumbnailUnavailable"]

log = logging.getLogger(__name__)


class ThumbnailUnavailable(NightlogError):
    """The file of a thumbnail is gone or cannot be read (the message says which)."""


class ThumbnailCache:
    """PNG thumbnails of archive images, cached in ``folder``.

    Parameters
    ----------
    folder : Path
        Where the pictures are kept (created when first needed).
    size : int
        Longest side of a picture, in pixels.
    """

    def __init__(self, folder: Path, *, size: int = DEFAULT_SIZE) -> None:
        self.folder = Path(folder)
        self.size = size
        self._warned = False
        self._lock = threading.Lock()
        # A night's page asks for every thumbnail at once: two pictures are made at a
        # time (each reads a whole frame), the other requests wait their turn.
        self._making = threading.BoundedSemaphore(2)

    def _name(self, sha256: str, hdu: int, stat: os.stat_result) -> Path:
        key = f"{sha256}:{hdu}:{self.size}:{stat.st_size}:{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.png"

    def png(self, path: str, hdu: int, sha256: str) -> bytes:
        """The PNG of the image in HDU ``hdu`` of ``path`` (catalogued with ``sha256``).

        Raises
        ------
        ThumbnailUnavailable
            The file is missing or its image cannot be read.
        """
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise ThumbnailUnavailable(f"file missing: {path}") from exc
        cached = self._name(sha256, hdu, stat)
        try:
            return cached.read_bytes()
        except OSError:
            pass
        if hdu == 0 and path.lower().endswith(COMPRESSED_SUFFIX):
            hdu = 1  # a tile-compressed product or master: the data follow an empty primary
        try:
            with self._making:
                data = zscale_thumbnail(read_image(path, hdu).data, self.size).png
        except (NightlogError, ValueError, OSError) as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ThumbnailUnavailable(f"cannot read the image of {path}: {first}") from exc
        try:
            write_atomically(cached, lambda fh: fh.write(data))
        except StoreError as exc:
            with self._lock:
                if not self._warned:
                    self._warned = True
                    log.warning("thumbnails are not cached (made again on each request): %s",
                                exc)
        return data
