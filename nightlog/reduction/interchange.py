"""What a written frame must say so that other tools read it as nightlog meant it.

A product or master leaves the archive: astropy's ``CCDData.read``, ccdproc,
``fitsverify``, DS9 and photometry codes open it without knowing nightlog. This
module holds the pure steps that make a frame's header true and legal for them:

- :func:`legal_header`: every card of the raw header that is not FITS-legal is
  rewritten (when its value can be recovered) or dropped, each with a HISTORY line;
- :func:`state_detector`: ``BUNIT``, ``GAIN``, ``RDNOISE`` and ``SATURATE`` describe
  the data as they now are, :func:`in_electrons` converts ADU to electrons, and
  :func:`as_output` does both for a reduced frame;
- :func:`dark_as_exposure`: a dark *rate* (ADU/s) becomes the ADU of a 1-second
  exposure (``EXPTIME = 1``), the form ``ccdproc.subtract_dark`` takes with
  ``dark_exposure=1 s``; the numbers do not change;
- :func:`time_cards`: the observation's start and end as ``DATE-OBS``,
  ``DATE-BEG``, ``DATE-END`` and their MJDs.

Nothing here reads or writes a file.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import ReductionError
from nightlog.reduction import _cards
from nightlog.reduction._frame import new_frame

__all__ = ["as_output", "dark_as_exposure", "in_electrons", "legal_header", "state_detector",
           "time_cards"]

# A FITS fixed or free-format character string: quotes doubled inside, then blanks
# and an optional comment (FITS 4.0, section 4.2.1).
_STRING_VALUE = re.compile(r"^\s*'((?:[^']|'')*)'\s*(?:/(.*))?$")
_STRING_PREFIX = re.compile(r"^\s*'((?:[^']|'')*)'")
_COMMENTARY = ("HISTORY", "COMMENT", "")
_MJD_ZERO = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)


def _raw_image(card: fits.Card) -> str:
    """The card's 80 characters as read (astropy refuses to re-serialise some)."""
    raw = getattr(card, "_image", None)
    if isinstance(raw, str) and raw:
        return raw
    with warnings.catch_warnings():
        # a comment too long for the card is cut when written, as it always was
        warnings.simplefilter("ignore", VerifyWarning)
        return card.image


def _card_problem(card: fits.Card) -> str | None:
    """Why ``card`` is not FITS-legal, or None when it is."""
    if card.keyword in _COMMENTARY:
        return None
    image = _raw_image(card)
    if any(not (" " <= ch <= "~") for ch in image):
        return "non-printable characters"
    if card.keyword.upper().startswith("HIERARCH") or image[8:10] != "= ":
        return None
    value_part = image[10:]
    if value_part.lstrip().startswith("'") and not _STRING_VALUE.match(value_part):
        return "text after the closing quote of its string"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            card.verify("exception")
            card.value  # noqa: B018 - parsing the value is the check
    except (fits.VerifyError, ValueError):
        return "a value that cannot be parsed"
    return None


def _repaired(card: fits.Card) -> fits.Card | None:
    """A legal card holding what ``card`` meant, or None when nothing can be recovered."""
    image = _raw_image(card)
    match = _STRING_PREFIX.match(image[10:]) if image[8:10] == "= " else None
    try:
        comment = _cards.fits_text(card.comment or "")
    except (fits.VerifyError, ValueError):
        comment = ""
    if match is not None:
        value = match.group(1).replace("''", "'")
        new = fits.Card(card.keyword, _cards.fits_text(value, 68))
        room = 80 - len(new.image.rstrip()) - 3
        if comment and room > 0:
            new = fits.Card(card.keyword, new.value, comment[:room])
        return new
    try:
        new = fits.Card(card.keyword, card.value, comment[:40])
        new.verify("exception")
    except (fits.VerifyError, ValueError):
        return None
    return new


def legal_header(header: fits.Header) -> fits.Header:
    """A copy of ``header`` with every non-FITS-legal card repaired or dropped.

    A string card with text after its closing quote (``FILTER = 'g'      '``) keeps
    the string and its comment; a card astropy cannot make legal is dropped. Each
    change adds a HISTORY line quoting the card as it was.
    """
    out = fits.Header()
    notes: list[str] = []
    for card in header.cards:
        problem = _card_problem(card)
        if problem is None:
            out.append(card, useblanks=False, bottom=True)
            continue
        raw = _cards.fits_text(_raw_image(card).rstrip())
        new = _repaired(card)
        if new is None:
            notes.append(f"Dropped card not FITS-legal ({problem}): {raw}")
        else:
            out.append(new, useblanks=False, bottom=True)
            notes.append(f"Repaired card not FITS-legal ({problem}): {raw}")
    notes.extend(_without_epoch(out))
    for note in notes:
        _cards.add_history(out, note)
    return out


def _without_epoch(header: fits.Header) -> list[str]:
    """Replace the deprecated ``EPOCH`` by ``EQUINOX`` in place; the notes to keep.

    FITS 4.0 (section 8.3) deprecates ``EPOCH`` for ``EQUINOX``, and readers such as
    fitsverify warn about it. A numeric ``EPOCH`` without an ``EQUINOX`` becomes one
    (same value and comment); beside an ``EQUINOX`` it is dropped, and a HISTORY
    line quotes it whenever it said something else.
    """
    if "EPOCH" not in header:
        return []
    card = header.cards["EPOCH"]
    raw = _cards.fits_text(_raw_image(card).rstrip())
    value = card.value
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    header.remove("EPOCH", remove_all=True)
    if "EQUINOX" in header:
        if numeric and header["EQUINOX"] == value:
            return []
        return [f"Dropped deprecated EPOCH beside EQUINOX = {header['EQUINOX']}: {raw}"]
    if not numeric:
        return [f"Dropped deprecated EPOCH that is not a number: {raw}"]
    header["EQUINOX"] = (float(value), card.comment or "equinox of the coordinates")
    return [f"Renamed deprecated EPOCH to EQUINOX (FITS 4.0 section 8.3): {raw}"]


def state_detector(ccd: CCDData, *, gain: float | None, read_noise: float | None,
                   saturation: float | None, owned: bool = False) -> CCDData:
    """A copy of ``ccd`` whose ``GAIN``, ``RDNOISE`` and ``SATURATE`` describe its data.

    Parameters
    ----------
    ccd : CCDData
        A frame in ADU or electrons (its unit says which).
    gain : float or None
        e-/ADU the reduction used; written as ``GAIN`` for ADU data, ``GAIN = 1`` for
        data in electrons; removed when None (a normalised flat has no gain).
    read_noise : float or None
        Read noise in electrons, written as ``RDNOISE``; removed when None.
    saturation : float or None
        The level, in the data's unit, above which values are not to be trusted;
        removed when None. Saturated pixels are flagged in the mask regardless.
    owned : bool, optional
        ``ccd``'s arrays are the caller's to give away (a frame it made itself and
        drops): the result takes them instead of copies.
    """
    header = _cards.header_of(ccd)
    unit = u.Unit(ccd.unit)
    if gain is None:
        header.remove("GAIN", ignore_missing=True, remove_all=True)
    elif unit == u.electron:
        _cards.set_card(header, "GAIN", 1.0, "e-/BUNIT: data are in electrons")
    else:
        _cards.set_card(header, "GAIN", round(float(gain), 6), "e-/ADU used by the reduction")
    if read_noise is None:
        header.remove("RDNOISE", ignore_missing=True, remove_all=True)
    else:
        _cards.set_card(header, "RDNOISE", round(float(read_noise), 6), "read noise [e-]")
    if saturation is None or not np.isfinite(saturation):
        header.remove("SATURATE", ignore_missing=True, remove_all=True)
    else:
        _cards.set_card(header, "SATURATE", round(float(saturation), 3),
                        f"saturation level [{unit.to_string()}]")
    if owned:
        return CCDData(ccd.data, unit=ccd.unit, meta=header, uncertainty=ccd.uncertainty,
                       mask=ccd.mask, flags=ccd.flags, wcs=ccd.wcs)
    return new_frame(ccd, np.array(ccd.data, copy=True), header)


def as_output(ccd: CCDData, *, unit: str, gain: float, read_noise: float | None,
              saturation: float | None, owned: bool = False) -> CCDData:
    """A reduced frame in ``unit`` (``adu`` or ``electron``), its cards true.

    Parameters
    ----------
    ccd : CCDData
        The reduced frame, in ADU, its ``OVSCLEV`` the overscan level taken away.
    unit : {'adu', 'electron'}
        Unit to write it in (electrons: :func:`in_electrons` with ``gain``).
    gain, read_noise : float
        e-/ADU and e- the reduction used.
    saturation : float or None
        The raw saturation level (ADU, bias included). ``SATURATE`` is that level less
        the overscan pedestal, in the frame's unit (before the flat: saturated pixels
        are flagged in the mask regardless).
    owned : bool, optional
        As in :func:`state_detector`.
    """
    if unit == "electron":
        ccd = in_electrons(ccd, gain)
    saturate = None
    if saturation is not None:
        level = float(saturation) - float(ccd.meta.get("OVSCLEV", 0.0) or 0.0)
        saturate = level * (gain if unit == "electron" else 1.0)
    return state_detector(ccd, gain=gain, read_noise=read_noise, saturation=saturate,
                          owned=owned)


def in_electrons(ccd: CCDData, gain: float) -> CCDData:
    """``ccd`` (in ADU or ADU/s) converted to electrons with ``gain`` e-/ADU.

    Data and uncertainty are multiplied by the gain; masks and flags are kept.

    Raises
    ------
    ReductionError
        The gain is not positive, or the data are not in ADU (or ADU per time).
    """
    if not (np.isfinite(gain) and gain > 0):
        raise ReductionError(f"gain must be positive (e-/ADU), not {gain!r}")
    unit = u.Unit(ccd.unit)
    if unit == u.electron or u.Unit(unit * u.s) == u.electron:
        # Already electrons (assembled from amplifiers, each times its own gain):
        # multiplying again would count the gain twice.
        if gain != 1.0:
            raise ReductionError(f"the data are already in {unit}: a gain of {gain:g} "
                                 "would be applied twice")
        return new_frame(ccd, np.asarray(ccd.data, dtype=np.float32), _cards.header_of(ccd))
    if not (unit == u.adu or u.Unit(unit * u.s) == u.adu):
        raise ReductionError(f"only ADU data convert to electrons, not {unit}")
    factor = np.float32(gain)
    data = np.asarray(ccd.data, dtype=np.float32) * factor
    uncertainty = None
    if ccd.uncertainty is not None:
        std = ccd.uncertainty.represent_as(StdDevUncertainty).array
        uncertainty = np.asarray(std, dtype=np.float32) * factor
    header = _cards.header_of(ccd)
    _cards.add_history(header, f"Converted to electrons with gain {gain:g} e-/ADU")
    return new_frame(ccd, data, header, uncertainty=uncertainty,
                     unit=u.electron * (unit / u.adu))


def dark_as_exposure(ccd: CCDData) -> CCDData:
    """A dark rate (per second) as the counts of a 1-second exposure, ``EXPTIME = 1``.

    ``ccdproc.subtract_dark(ccd, dark, dark_exposure=1 * u.s, data_exposure=t,
    scale=True)`` then subtracts what nightlog subtracts. A dark that is not a
    rate is returned unchanged (a copy).
    """
    unit = u.Unit(ccd.unit)
    header = _cards.header_of(ccd)
    counts = u.Unit(unit * u.s)
    if not (counts.is_equivalent(u.adu) or counts.is_equivalent(u.electron)):
        return new_frame(ccd, np.array(ccd.data, copy=True), header)
    _cards.set_card(header, "EXPTIME", 1.0, "s: the dark current of 1 s")
    _cards.add_history(header, "Dark rate stored as the counts of a 1 s exposure")
    return new_frame(ccd, np.array(ccd.data, copy=True), header, unit=counts)


def time_cards(start: dt.datetime, end: dt.datetime
               ) -> tuple[tuple[str, str | float, str], ...]:
    """``DATE-OBS``, ``DATE-BEG``, ``DATE-END``, their MJDs and ``TIMESYS``.

    Parameters
    ----------
    start, end : datetime.datetime
        The start of the (first) exposure and the end of the (last) one, UTC (naive
        values are taken as UTC).

    Returns
    -------
    tuple of (keyword, value, comment)
        ISO-8601 times to the millisecond and MJDs (FITS 4.0, section 9.4), so that
        ``CCDData.read`` finds the observation time without fixing the header.
    """
    def utc(when: dt.datetime) -> dt.datetime:
        return (when.replace(tzinfo=dt.UTC) if when.tzinfo is None
                else when.astimezone(dt.UTC))

    begin, finish = utc(start), utc(end)

    def iso(when: dt.datetime) -> str:
        return when.replace(tzinfo=None).isoformat(timespec="milliseconds")

    def mjd(when: dt.datetime) -> float:
        return round((when - _MJD_ZERO).total_seconds() / 86400.0, 8)

    return (("DATE-OBS", iso(begin), "start of the observation (UTC)"),
            ("DATE-BEG", iso(begin), "start of the observation (UTC)"),
            ("DATE-END", iso(finish), "end of the observation (UTC)"),
            ("MJD-OBS", mjd(begin), "MJD of DATE-OBS (UTC)"),
            ("MJD-BEG", mjd(begin), "MJD of DATE-BEG (UTC)"),
            ("MJD-END", mjd(finish), "MJD of DATE-END (UTC)"),
            ("TIMESYS", "UTC", "time scale of the DATE and MJD keywords"))
