"""Tile-compressed FITS (``.fits.fz``): the same HDUs, Rice-compressed.

``[archive] compress = "rice"`` names products and masters ``.fits.fz`` and
:func:`~nightlog.store.images.write_hdulist` writes them through
:func:`tile_compressed`: an empty primary HDU, then every image HDU as a
:class:`~astropy.io.fits.CompImageHDU` (the primary's data as extension ``SCI``,
which ``CCDData.read`` finds as the first HDU with data), the tables as they are.

Integer planes (the ``MASK`` bits) are compressed losslessly. Float planes (data
and uncertainty) are quantised before compression, as fpack does: the step is
the plane's noise (estimated per tile) divided by :data:`QUANTIZE_LEVEL`, with
subtractive dithering, so the noise added is about ``σ / (QUANTIZE_LEVEL·√12)``,
0.018 σ for 16 (``docs/products.md`` gives the figures measured on a simulated
night). Pixels that are NaN stay NaN.
"""

from __future__ import annotations

from astropy.io import fits

__all__ = ["COMPRESSED_SUFFIX", "QUANTIZE_LEVEL", "tile_compressed"]

#: The file name ending of a tile-compressed file.
COMPRESSED_SUFFIX = ".fits.fz"
#: Quantisation of float planes: noise per tile over this many levels (fpack's default).
QUANTIZE_LEVEL = 16.0


def _image_header(header: fits.Header) -> fits.Header:
    out = header.copy()
    for key in ("SIMPLE", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM"):
        out.remove(key, ignore_missing=True, remove_all=True)
    return out


def tile_compressed(hdul: fits.HDUList, *, quantize_level: float = QUANTIZE_LEVEL
                    ) -> fits.HDUList:
    """The Rice tile-compressed form of ``hdul`` (nothing is written).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        A product or master as :func:`~nightlog.reduction.products.to_hdulist`
        builds it.
    quantize_level : float
        Quantisation of float planes (see the module notes).

    Returns
    -------
    astropy.io.fits.HDUList
        An empty primary, the image HDUs compressed (the primary's as ``SCI``),
        tables unchanged.
    """
    out: list[fits.PrimaryHDU | fits.CompImageHDU | fits.BinTableHDU] = [fits.PrimaryHDU()]
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU) and hdu.data is not None:
            name = "SCI" if index == 0 else hdu.name
            out.append(fits.CompImageHDU(
                hdu.data, _image_header(hdu.header), name=name, compression_type="RICE_1",
                quantize_level=quantize_level, quantize_method=1))
        elif isinstance(hdu, fits.BinTableHDU):
            out.append(hdu)
    return fits.HDUList(out)
