"""Writing a single-HDU uint16 FITS file from card images, atomically.

The cameras store unsigned 16-bit pixels as signed 16-bit integers with
``BZERO = 32768``; subtracting 32768 from a uint16 is the same as flipping its
top bit, which is what is done here before writing big-endian bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from nightlog.simulate.cards import header_bytes
from nightlog.store.atomic import write_atomically

__all__ = ["write_uint16_fits", "write_uint16_mef"]

_BLOCK = 2880


def write_uint16_fits(path: Path, cards: list[str], data: np.ndarray) -> Path:
    """Write ``data`` under the header ``cards`` to ``path`` atomically.

    Parameters
    ----------
    path : pathlib.Path
        Final file name; a temporary file beside it is renamed onto it when complete.
    cards : list of str
        80-character card images without ``END``; must declare ``BITPIX = 16``,
        the shape of ``data`` and ``BZERO = 32768``.
    data : numpy.ndarray
        uint16 image ``(NAXIS2, NAXIS1)``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        ``data`` is not a 2-D uint16 array.
    nightlog.errors.StoreError
        The file cannot be written.
    """
    if data.dtype != np.uint16 or data.ndim != 2:
        raise TypeError(f"need a 2-D uint16 image, not {data.dtype} {data.shape}")
    header = header_bytes(cards)
    payload = (data ^ np.uint16(0x8000)).astype(">u2", copy=False)
    pad = (-payload.nbytes) % _BLOCK

    def _write(fh: BinaryIO) -> None:
        fh.write(header)
        fh.write(np.ascontiguousarray(payload).data.cast("B"))
        fh.write(b"\0" * pad)

    return write_atomically(path, _write)


def write_uint16_mef(path: Path, primary: list[str],
                     extensions: list[tuple[list[str], np.ndarray]]) -> Path:
    """Write an empty primary HDU and uint16 image extensions to ``path`` atomically.

    Parameters
    ----------
    path : pathlib.Path
        Final file name; a temporary file beside it is renamed onto it when complete.
    primary : list of str
        Card images of the primary header (``NAXIS = 0``), without ``END``.
    extensions : list of (list of str, numpy.ndarray)
        Each extension's cards (``XTENSION = 'IMAGE'``, ``BITPIX = 16``, its
        shape, ``BZERO = 32768``) and its 2-D uint16 data.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        An extension's data is not a 2-D uint16 array.
    nightlog.errors.StoreError
        The file cannot be written.
    """
    units: list[tuple[bytes, np.ndarray]] = []
    for cards, data in extensions:
        if data.dtype != np.uint16 or data.ndim != 2:
            raise TypeError(f"need a 2-D uint16 image, not {data.dtype} {data.shape}")
        units.append((header_bytes(cards), (data ^ np.uint16(0x8000)).astype(">u2")))
    head = header_bytes(primary)

    def _write(fh: BinaryIO) -> None:
        fh.write(head)
        for header, payload in units:
            fh.write(header)
            fh.write(np.ascontiguousarray(payload).data.cast("B"))
            fh.write(b"\0" * ((-payload.nbytes) % _BLOCK))

    return write_atomically(path, _write)
