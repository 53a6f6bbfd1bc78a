"""The masters a worker keeps from one frame of a batch to the next.

A night's science frames are reduced with the same few masters. Reading them
(data, uncertainty, bit plane and read-noise map of each) and finding their bits
(:func:`~nightlog.reduction.bad_pixels.master_plane`: HOT from a median and MAD
of the whole dark, DEAD and UNILLUMINATED from the flat's block means) cost more
than all the arithmetic of a frame. So a worker process keeps the last masters it
read, file by file (frames of several filters taken in turn share the night's bias
and dark), keyed by each file's path, size, modification time and inode (a master
is written once under its final name and never rewritten; a file that changes is
read again), and the bit planes found with them, keyed by the set of masters, the
thresholds and the window crops. The reduction core never modifies its inputs, so
the kept frames are safe to hand to every job.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy.nddata import StdDevUncertainty, VarianceUncertainty

from nightlog.errors import UnreadableFileError
from nightlog.reduction.bad_pixels import (
    BitPlane,
    MasterPlane,
    plane_of,
    plane_thresholds,
    role_bits,
)
from nightlog.reduction.science_parameters import ScienceParameters
from nightlog.store.products import ProductFile, read_product

__all__ = ["PLANE_ROLES", "KeptMasters", "kept_masters"]

_FileKey = tuple[str, str, int, int, int]
_PlaneKey = tuple[tuple[_FileKey, ...], object, object]


def _key(role: str, path: str) -> _FileKey:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read master {path}: {exc.strerror or exc}") from exc
    return (role, os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


#: Master files kept at once: a night's bias and dark and the flats of its filters
#: (science frames taken in turn through g, r, i, z share one bias and one dark).
MAX_FILES = 6
#: Bit planes kept at once (one per set of masters, thresholds and crops).
MAX_PLANES = 4
#: The roles whose masters give a frame bits (:func:`role_bits`).
PLANE_ROLES = ("bias", "dark", "flat")


@dataclass
class KeptMasters:
    """The masters read by this process, and their bit planes, the latest kept.

    Files are kept one by one (a frame of another filter reads its flat, not the
    night's bias and dark again), at most :data:`MAX_FILES`, the least recently used
    given up first; each master's uncertainty is kept as a variance, the form every
    step propagates (squared once, not once per frame: the same float32 values).

    Attributes
    ----------
    reads : int
        Master files read since the process started (for tests and benchmarks).
    """

    reads: int = 0
    max_files: int = MAX_FILES
    max_planes: int = MAX_PLANES
    _files: OrderedDict[_FileKey, ProductFile] = field(default_factory=OrderedDict)
    _planes: OrderedDict[_PlaneKey, MasterPlane] = field(default_factory=OrderedDict)
    _bits: dict[tuple[_FileKey, object], BitPlane] = field(default_factory=dict)
    _last: tuple[_FileKey, ...] = ()

    def files(self, masters: Sequence[tuple[str, str]]) -> dict[str, ProductFile]:
        """The masters ``(role, path)`` as read products, read only when not kept.

        Raises
        ------
        UnreadableFileError
            A master file is gone or cannot be read.
        """
        keys = tuple(_key(role, path) for role, path in masters)
        out: dict[str, ProductFile] = {}
        for (role, path), key in zip(masters, keys, strict=True):
            kept = self._files.get(key)
            if kept is None:
                kept = _as_variance(read_product(path))
                self.reads += 1
                self._files[key] = kept
            self._files.move_to_end(key)
            out[role] = kept
        while len(self._files) > max(self.max_files, len(keys)):
            gone, _ = self._files.popitem(last=False)
            for plane_key in [k for k in self._planes if gone in k[0]]:
                del self._planes[plane_key]
            for bits_key in [k for k in self._bits if k[0] == gone]:
                del self._bits[bits_key]
        self._last = keys
        return out

    def plane(self, params: ScienceParameters,
              crops: Mapping[str, tuple[int, int, int, int]]) -> MasterPlane:
        """The bit plane of the masters :meth:`files` gave last, for these thresholds
        and crops, found once."""
        key = (self._last, plane_thresholds(params), tuple(sorted(crops.items())))
        plane = self._planes.get(key)
        if plane is None:
            bits = {k[0]: self._role_bits(k, params) for k in self._last
                    if k[0] in PLANE_ROLES}
            plane = plane_of(bits, params=params, crops=crops)
            self._planes[key] = plane
            while len(self._planes) > self.max_planes:
                self._planes.popitem(last=False)
        self._planes.move_to_end(key)
        return plane

    def warm(self, masters: Sequence[tuple[str, str]], params: ScienceParameters) -> None:
        """Read ``masters`` and find each one's bits for these thresholds now, before
        a frame needs them (a daemon that has just built them, while it is idle).

        Raises
        ------
        UnreadableFileError
            A master file is gone or cannot be read.
        """
        self.files(masters)
        for key in self._last:
            if key[0] in PLANE_ROLES:
                self._role_bits(key, params)

    def _role_bits(self, key: _FileKey, params: ScienceParameters) -> BitPlane:
        """One kept master's bits (:func:`role_bits`), found once per thresholds."""
        bits_key = (key, plane_thresholds(params))
        bits = self._bits.get(bits_key)
        if bits is None:
            bits = role_bits(key[0], self._files[key].ccd, params)
            bits.flags.writeable = False
            self._bits[bits_key] = bits
        return bits


def _as_variance(product: ProductFile) -> ProductFile:
    """``product`` with its frame's standard deviation held as a variance."""
    unc = product.ccd.uncertainty
    if not isinstance(unc, StdDevUncertainty):
        return product
    ccd = product.ccd
    ccd.uncertainty = VarianceUncertainty(np.square(np.asarray(unc.array), dtype=np.float32),
                                          unit=None if unc.unit is None else unc.unit ** 2)
    return product


_KEPT: KeptMasters | None = None


def kept_masters() -> KeptMasters:
    """This process's :class:`KeptMasters` (made on first use)."""
    global _KEPT
    if _KEPT is None:
        _KEPT = KeptMasters()
    return _KEPT
