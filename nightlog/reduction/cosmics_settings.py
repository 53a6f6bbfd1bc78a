"""How L.A.Cosmic runs on one frame: :class:`CosmicRaySettings`, and the rule each
of its fields obeys.

A light module (no numpy, no astropy) so that the settings file's
``[cosmic_rays]`` section (:mod:`nightlog.settings_cosmic_rays`) is validated by
the same rules the reduction applies, without loading the reduction core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Literal

from nightlog.errors import ConfigurationError

__all__ = ["CLEAN_TYPES", "FINE_STRUCTURE_MODES", "PSF_MODELS", "CosmicRaySettings",
           "field_problem"]

CleanType = Literal["median", "medmask", "meanmask", "idw"]
FineStructureMode = Literal["median", "convolve"]
PsfModel = Literal["gauss", "gaussx", "gaussy", "moffat"]

#: The values of ``cleantype``, ``fsmode`` and ``psfmodel`` (astroscrappy's).
CLEAN_TYPES: tuple[str, ...] = ("median", "medmask", "meanmask", "idw")
FINE_STRUCTURE_MODES: tuple[str, ...] = ("median", "convolve")
PSF_MODELS: tuple[str, ...] = ("gauss", "gaussx", "gaussy", "moffat")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _one_of(choices: tuple[str, ...]) -> tuple[Callable[[object], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(f'"{c}"' for c in choices)


_BOOL = (lambda v: isinstance(v, bool)), "true or false"

#: Each field's test and what it must be (for the message).
_RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "enabled": _BOOL,
    "sigclip": ((lambda v: _number(v) and 0 < float(v) <= 100),  # type: ignore[arg-type]
                "a number of sigma in (0, 100]"),
    "sigfrac": ((lambda v: _number(v) and 0 < float(v) <= 1),  # type: ignore[arg-type]
                "a fraction of sigclip in (0, 1]"),
    "objlim": ((lambda v: _number(v) and 0 < float(v) <= 100),  # type: ignore[arg-type]
               "a contrast in (0, 100]"),
    "niter": ((lambda v: _whole(v) and 1 <= v <= 20),  # type: ignore[operator]
              "a whole number of iterations from 1 to 20"),
    "sepmed": _BOOL,
    "cleantype": _one_of(CLEAN_TYPES),
    "fsmode": _one_of(FINE_STRUCTURE_MODES),
    "psfmodel": _one_of(PSF_MODELS),
    "psffwhm": ((lambda v: _number(v) and 0 < float(v) <= 50),  # type: ignore[arg-type]
                "a width in pixels in (0, 50]"),
    "psfsize": ((lambda v: _whole(v) and 3 <= v <= 51 and v % 2 == 1),  # type: ignore[operator]
                "an odd whole number of pixels from 3 to 51"),
    "clean": _BOOL,
    "threads": ((lambda v: v is None or (_whole(v) and v >= 1)),  # type: ignore[operator]
                "a whole number >= 1"),
    "scheduled": _BOOL,
    "refine": _BOOL,
    "seed_sigma": ((lambda v: _number(v) and 0 < float(v) <= 100),  # type: ignore[arg-type]
                   "a number of sigma in (0, 100]"),
    "grow_sigma": ((lambda v: _number(v) and 0 < float(v) <= 100),  # type: ignore[arg-type]
                   "a number of sigma in (0, 100]"),
    "psf_contrast": ((lambda v: _number(v) and 0 < float(v) <= 10),  # type: ignore[arg-type]
                     "a contrast in (0, 10]"),
    "star_model": _BOOL,
    "background_model": _BOOL,
}


def field_problem(name: str, value: object) -> str | None:
    """What is wrong with ``value`` for the field ``name`` (``None``: nothing).

    Parameters
    ----------
    name : str
        A field of :class:`CosmicRaySettings`.
    value : object
        Its proposed value, as a TOML file or a caller gives it.

    Returns
    -------
    str or None
        ``"must be …, not …"``, or ``None`` when the value is valid.
    """
    test, wanted = _RULES[name]
    return None if test(value) else f"must be {wanted}, not {value!r}"


@dataclass(frozen=True)
class CosmicRaySettings:
    """How to run L.A.Cosmic on one frame.

    Attributes
    ----------
    enabled : bool
        ``False`` skips detection altogether (the science reduction records the skip).
    sigclip : float
        Laplacian-to-noise threshold (σ) for a cosmic-ray pixel; lower flags more.
    sigfrac : float
        Fraction of ``sigclip`` used for the neighbours of a detection.
    objlim : float
        Minimum contrast between the Laplacian and the fine-structure image; raise it
        if cores of sharp stars are flagged.
    niter : int
        L.A.Cosmic iterations (each finds what cleaning the previous one uncovered).
    sepmed : bool
        Separable median filters (faster, nearly identical) instead of full medians.
    cleantype : {'median', 'medmask', 'meanmask', 'idw'}
        How flagged pixels are replaced in the cleaned image (5 × 5 neighbourhood).
    fsmode : {'median', 'convolve'}
        Fine-structure image by median filtering or by a PSF matched filter.
    psfmodel : {'gauss', 'gaussx', 'gaussy', 'moffat'}
        PSF shape when ``fsmode='convolve'``.
    psffwhm : float
        PSF full width at half maximum (pixels) when ``fsmode='convolve'``.
    psfsize : int
        Odd side (pixels) of the PSF kernel when ``fsmode='convolve'``.
    clean : bool
        ``True`` returns data with flagged pixels replaced (as the lecture shows);
        ``False`` returns the data untouched and only the mask.
    threads : int or None
        Threads the detection may use: bands of the frame run at once when
        ``scheduled`` (:mod:`nightlog.reduction.cosmics_tiles`), astroscrappy's
        OpenMP team otherwise; ``None``: every core this process may use.
    scheduled : bool
        Run astroscrappy's iterations only where they can flag
        (:mod:`nightlog.reduction.cosmics_schedule`; the same mask and cleaned image,
        bit for bit); ``False`` calls :func:`astroscrappy.detect_cosmics` on the whole
        frame. Only ``cleantype='meanmask'`` with ``fsmode='median'`` is scheduled;
        other settings always take the direct call.
    refine : bool
        After L.A.Cosmic, a second look at the neighbourhoods of candidates
        (:mod:`nightlog.reduction.cosmics_sharpness`): hits beside bad pixels and
        faint pixels beside bright cores added, star pixels the point-spread
        function explains dropped; a new hit must also be sharper than a 1.4 px
        FWHM star. ``False``: L.A.Cosmic's mask alone.
    seed_sigma : float
        Second look: threshold (σ of the propagated noise) of a new hit's pixel
        over its neighbours.
    grow_sigma : float
        Second look: threshold (σ) of a flagged pixel's neighbour over the local level.
    psf_contrast : float
        Second look: the largest ratio of a pixel's excess over its 8 neighbours to
        their excess over the ring around them that a star can show (1.35: a Moffat
        β = 3 of 3 px FWHM centred on a pixel; sharper stars need more).
    star_model : bool
        After the second look, each star's pixels tested against a model of the star
        (:mod:`nightlog.reduction.cosmics_stars`: the frame's PSF measured on its own
        isolated stars, fitted to each star): hits on stars found, star pixels
        flagged as hits given back, with ``seed_sigma`` and ``grow_sigma``. Runs only
        with ``refine``.
    background_model : bool
        Last, each pixel off stars tested against a smooth model of the background
        (:mod:`nightlog.reduction.cosmics_background`: medians of 64 × 64 px cells,
        interpolated): points above ``seed_sigma`` − 0.25 (and adjacent pairs summing
        over √2 above ``seed_sigma`` + 0.5) added, flagged pixels grown into
        neighbours above ``grow_sigma``; where the frame has structure the model does
        not follow, the verdict stands. Runs only with ``refine``.

    Raises
    ------
    ConfigurationError
        A field out of its range or not one of its values; the message names it.
    """

    enabled: bool = True
    sigclip: float = 4.5
    sigfrac: float = 0.3
    objlim: float = 5.0
    niter: int = 2
    sepmed: bool = True
    cleantype: CleanType = "meanmask"
    fsmode: FineStructureMode = "median"
    psfmodel: PsfModel = "gauss"
    psffwhm: float = 3.5
    psfsize: int = 7
    clean: bool = True
    threads: int | None = None
    scheduled: bool = True
    refine: bool = True
    seed_sigma: float = 4.5
    grow_sigma: float = 2.5
    psf_contrast: float = 1.35
    star_model: bool = True
    background_model: bool = True

    def __post_init__(self) -> None:
        for item in fields(self):
            problem = field_problem(item.name, getattr(self, item.name))
            if problem is not None:
                raise ConfigurationError(f"cosmic-ray {item.name} {problem}")

    def as_keywords(self) -> dict[str, object]:
        """The settings astroscrappy takes, as keyword arguments of ``detect_cosmics``."""
        keywords: dict[str, object] = {
            "sigclip": self.sigclip,
            "sigfrac": self.sigfrac,
            "objlim": self.objlim,
            "niter": self.niter,
            "sepmed": self.sepmed,
            "cleantype": self.cleantype,
            "fsmode": self.fsmode,
        }
        if self.fsmode == "convolve":
            keywords.update(psfmodel=self.psfmodel, psffwhm=self.psffwhm, psfsize=self.psfsize)
        return keywords
