"""The masters a worker keeps from one frame of a batch to the next.

A night's science frames are reduced with the same few masters. Reading them
(data, uncertainty, bit plane and read-noise map of each) and finding their bits
(:func:`~nightlog.reduction.bad_pixels.master_plane`: HOT from a median and MAD
of the whole dark, DEAD and UNILLUMINATED from the flat's block means) cost more
than all the arithmetic of a frame. So a worker process keeps the last set of
masters it read, keyed by each file's path, size, modification time and inode
(a master is written once under its final name and never rewritten; a file that
changes is read again), and the bit planes found with them, keyed by the
thresholds and the window crops. The reduction core never modifies its inputs,
so the kept frames are safe to hand to every job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nightlog.errors import UnreadableFileError
from nightlog.reduction.bad_pixels import MasterPlane, master_plane, plane_thresholds
from nightlog.reduction.science_parameters import ScienceParameters
from nightlog.store.products import ProductFile, read_product

__all__ = ["KeptMasters", "kept_masters"]

_FileKey = tuple[str, str, int, int, int]


def _key(role: str, path: str) -> _FileKey:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read master {path}: {exc.strerror or exc}") from exc
    return (role, os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class KeptMasters:
    """The last set of masters read by this process, and their bit planes.

    Attributes
    ----------
    reads : int
        Master files read since the process started (for tests and benchmarks).
    """

    reads: int = 0
    _key: tuple[_FileKey, ...] = ()
    _files: dict[str, ProductFile] = field(default_factory=dict)
    _planes: dict[tuple[object, ...], MasterPlane] = field(default_factory=dict)

    def files(self, masters: Sequence[tuple[str, str]]) -> dict[str, ProductFile]:
        """The masters ``(role, path)`` as read products, read only when not kept.

        Raises
        ------
        UnreadableFileError
            A master file is gone or cannot be read.
        """
        key = tuple(_key(role, path) for role, path in masters)
        if key != self._key:
            self._key, self._files, self._planes = (), {}, {}
            files = {role: read_product(path) for role, path in masters}
            self.reads += len(files)
            self._key, self._files = key, files
        return dict(self._files)

    def plane(self, params: ScienceParameters,
              crops: Mapping[str, tuple[int, int, int, int]]) -> MasterPlane:
        """The bit plane of the kept masters for these thresholds and crops, found once."""
        key = (plane_thresholds(params), tuple(sorted(crops.items())))
        if key not in self._planes:
            ccd = {role: f.ccd for role, f in self._files.items()}
            self._planes[key] = master_plane(bias=ccd.get("bias"), dark=ccd.get("dark"),
                                             flat=ccd.get("flat"), params=params,
                                             crops=crops)
        return self._planes[key]


_KEPT: KeptMasters | None = None


def kept_masters() -> KeptMasters:
    """This process's :class:`KeptMasters` (made on first use)."""
    global _KEPT
    if _KEPT is None:
        _KEPT = KeptMasters()
    return _KEPT
