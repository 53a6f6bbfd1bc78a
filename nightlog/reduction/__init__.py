"""The pure reduction core: CCD frames in, new CCD frames out.

Every public function in this package takes numpy arrays or
:class:`astropy.nddata.CCDData` and returns new objects; inputs are never
modified, nothing here reads or writes the catalogue, and nothing here decides
where a file goes. The steps follow the usual order of a CCD reduction:

``overscan``
    subtract the overscan level (per row or one level), optionally modelled.
``trim``
    cut the frame down to its data section.
``calibrate``
    subtract bias and dark, divide by the flat, propagating uncertainty and mask.
``masters``
    combine bias, dark and flat frames into masters (how: ``master_options``; the
    master's frame, bit plane and statistics: ``master_frame``).
``science``
    reduce one science frame with the night's masters (its parameters:
    ``science_parameters``; the frame and step records it returns: ``science_record``).
``uncertainty``
    build the per-pixel standard deviation from read and Poisson noise.
``mask``
    the documented bit mask (:class:`~nightlog.reduction.mask.MaskBit`).
``characterise``
    gain, read noise and frame statistics of a detector.
``products``
    turn a reduced frame into a FITS HDU list that ``CCDData.read`` opens.

Submodules are imported on demand; importing the package itself does no work.
"""

from __future__ import annotations

__all__: list[str] = []
