"""A multi-amplifier frame as one image: its extensions read, its amplifiers assembled.

The loader the master builds and the reduction use in place of
:class:`~nightlog.store.images.FrameFile` for a frame the catalogue holds with
amplifiers: the store reads the amplifiers' extensions (one open of the file), the
reduction core assembles them (:func:`~nightlog.reduction.amplifiers.assemble_amplifiers`).
Picklable, so a worker can be handed a list of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from astropy import units as u
from astropy.nddata import CCDData

from nightlog.header.amplifiers import AmplifierLayout
from nightlog.reduction.amplifiers import assemble_amplifiers
from nightlog.store.images import FrameFile, read_float32_hdus

__all__ = ["AmplifierFrameFile", "frame_loader", "read_amplifiers"]


def read_amplifiers(path: str, layout: AmplifierLayout) -> list[CCDData]:
    """The raw amplifier extensions of ``path`` (ADU, headers kept), in layout order."""
    return [CCDData(data, unit=u.adu, meta=header)
            for data, header in read_float32_hdus(path, layout.hdus)]


@dataclass(frozen=True, slots=True)
class AmplifierFrameFile:
    """One multi-amplifier file (or one CCD of a mosaic file: ``layout`` holds its
    amplifiers alone), read and assembled (electrons) when called; a CCD's image
    says its name in ``CCDNAME``."""

    path: str
    layout: AmplifierLayout
    per_row: bool = True

    def __call__(self) -> CCDData:
        names = self.layout.ccd_names
        ccd = names[0] if len(names) == 1 and names[0] else None
        return assemble_amplifiers(read_amplifiers(self.path, self.layout), self.layout,
                                   ccd=ccd, per_row=self.per_row)


def frame_loader(path: str, hdu: int, amplifiers: Mapping[str, Any] | AmplifierLayout | None
                 ) -> FrameFile | AmplifierFrameFile:
    """The loader of a catalogued frame: its image HDU, or its amplifiers assembled."""
    if amplifiers is None:
        return FrameFile(path, hdu)
    layout = (amplifiers if isinstance(amplifiers, AmplifierLayout)
              else AmplifierLayout.from_json(amplifiers))
    return AmplifierFrameFile(path, layout)
