"""What an instrument profile holds: typed, immutable, validated data.

An :class:`InstrumentProfile` says how one camera writes its headers (which keyword
holds the frame type, the exposure time, the filter, ...) and what later stages need
to know about it (overscan, trim, flat scale region, dark scaling, how calibrations
are grouped). It is built from a TOML table by :mod:`nightlog.header.profiles.tables`; the
field defaults below are the behaviour of the built-in ``generic`` profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from nightlog.errors import SectionError
from nightlog.header.amplifiers import AmplifierSpec
from nightlog.header.model import Site
from nightlog.header.profiles.frame_types import DEFAULT_FRAME_TYPES, classify_frame_type
from nightlog.header.profiles.match_rule import MatchRule
from nightlog.sections import Section, parse_section

__all__ = [
    "DARK_SCALINGS",
    "DARK_TEMPERATURE_SCALINGS",
    "DEFAULT_CALIBRATION_KEYS",
    "DEFAULT_MIN_FRAMES",
    "GROUPING_FIELDS",
    "ILLUMINATIONS",
    "InstrumentProfile",
]

#: NormalizedHeader attributes that set-up keys and calibration grouping may use.
GROUPING_FIELDS: tuple[str, ...] = (
    "instrument", "detector", "binning", "readout_mode", "shape", "set_temp", "filter",
    "exptime", "gain_setting", "offset", "bayer_pattern", "ccd",
)

#: How master darks meet a frame's exposure (``dark_scaling``): ``linear`` scales a
#: dark rate, ``exact_exposure`` takes a master of the same exposure, ``interpolate``
#: builds the dark of the frame's exposure from the two master darks bracketing it.
DARK_SCALINGS: tuple[str, ...] = ("linear", "exact_exposure", "interpolate")
#: How a flat's large-scale illumination is corrected (profile ``illumination``).
ILLUMINATIONS: tuple[str, ...] = ("none", "night-sky")

#: Whether a master dark of another set temperature may serve a frame with no dark
#: within ``dark_temp_tolerance`` (``dark_temperature_scaling``): ``off`` never,
#: ``fitted`` scaled by the doubling temperature fitted on the archive's darks,
#: ``profile`` by the profile's ``dark_doubling_temperature``.
DARK_TEMPERATURE_SCALINGS: tuple[str, ...] = ("off", "fitted", "profile")

_SETUP = ("instrument", "detector", "binning", "readout_mode", "shape")

DEFAULT_CALIBRATION_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "bias": _SETUP,
    "dark": (*_SETUP, "set_temp"),
    "flat": (*_SETUP, "filter"),
})


DEFAULT_MIN_FRAMES: Mapping[str, int] = MappingProxyType({"bias": 5, "dark": 5, "flat": 5})


@dataclass(frozen=True, slots=True)
class InstrumentProfile:
    """How one camera's raw headers are read, and its facts for later stages.

    Keyword lists are tried in order; the first keyword with a non-blank value wins.
    Every attribute is documented, with its TOML key, in ``docs/profiles.md``.

    Attributes
    ----------
    name : str
        Profile name (the ``[instruments.<name>]`` table).
    match : tuple of MatchRule
        All must hold for the profile to match; none means "never matched
        automatically" (except ``generic``, the fallback).
    priority : int
        Wins over specificity when two profiles match.
    site : Site or None
        Site of the camera; beats the settings site and header longitudes.
    gain, read_noise, saturation : float or None
        Overrides in e-/ADU, e- and ADU; header values are used when ``None``.
    gain_setting_keywords, offset_keywords : tuple of str
        Where a CMOS camera's gain *setting* and offset (camera controls, not
        e-/ADU) are read; a keyword may not also be a ``gain_keywords`` entry.
    gain_table : mapping of float to float
        e-/ADU per gain setting; wins over the header's e-/ADU keyword.
    bit_depth : int or None
        Bits of the converter when its values are shifted to 16 bits (12: every
        value a multiple of 16); sets the default saturation and the quantisation
        step ``2**(16 - bit_depth)`` ADU.
    bias_max_exptime : float or None
        A dark no longer than this (s) is catalogued as a bias: cameras whose
        "bias" is a very short dark.
    read_noise_map : bool
        Master biases carry a per-pixel read-noise map (``RDNOISE`` extension);
        pixels above ``noisy_factor`` × its median are NOISY.
    gain_measured : bool
        The TOML's ``gain = "measured"``: reduce with the gain the master flat
        measured by photon transfer (``gain_ptc``), before the header's.
    overscan, trim, datasec, ccdsec : str or None
        A literal FITS section (``'[2049:2080,1:4127]'``) or the header keyword that
        holds one (``'BIASSEC'``); ``None`` for none.
    full_shape : tuple of int or None
        ``(ny, nx)`` of an unbinned full readout: literal sections apply only to
        frames of this shape.
    window_source : str
        How a subarray frame says where it lies on the detector: ``'xorgsubf'``,
        ``'ltv'``, ``'ccdsec'``, ``'detsec'`` or ``'none'`` (see
        :mod:`nightlog.header.window`); needs ``full_shape``.
    overscan_skip_columns : int
        Overscan columns next to the data to ignore (charge or light leaking in).
    overscan_fit_degree : int or None
        Degree of a polynomial in the row number fitted to the per-row overscan
        levels (IRAF ``order`` is this plus one); ``None``: the levels themselves.
    overscan_niterate, overscan_low_reject, overscan_high_reject : int, float, float
        IRAF ``niterate``/``low_reject``/``high_reject``: passes of rejection of
        outlying rows from that fit and their limits in sigma of its residuals
        (0, 3, 3: no rejection).
    flat_scale_region : str or None
        FITS section used to normalise flats; else the central ``flat_scale_fraction``.
    darks_scale : bool
        Whether darks may be scaled by exposure time (dark current is linear).
    dark_scaling : {'linear', 'exact_exposure', 'interpolate'}
        How a master dark meets a frame's exposure (``darks_scale`` false is
        ``exact_exposure``).
    dark_temp_tolerance : float
        Set temperatures (deg C) closer than this count as equal when grouping darks.
    dark_temperature_scaling : {'off', 'fitted', 'profile'}
        A frame with no master dark within ``dark_temp_tolerance`` gets the dark
        nearest in set temperature, scaled by ``2**((T_frame - T_dark) / T_d)``
        with the doubling temperature ``T_d`` fitted on the archive's master darks
        (``fitted``) or given below (``profile``); ``off`` (default): never. Only
        for ``dark_scaling = 'linear'`` (bias-subtracted darks that are all dark
        current), see :mod:`nightlog.calibration.dark_temperature`.
    dark_doubling_temperature, dark_doubling_temperature_err : float or None
        K over which the dark current doubles, and its one-sigma uncertainty, for
        ``dark_temperature_scaling = 'profile'``.
    dead_low, dead_high : float, float or None
        A master-flat pixel below ``dead_low`` × (above ``dead_high`` ×) the response
        of its neighbourhood is DEAD.
    low_response : float or None
        Where the flat's large-scale response is below this × its median, pixels
        are UNILLUMINATED (vignetted); ``None`` (``0`` in TOML): not flagged.
    illumination : {'none', 'night-sky'}
        ``night-sky``: the flat's large-scale illumination is corrected by a model
        of the night's own science frames of each set-up and filter (sources
        masked, scaled by their sky, combined, fitted with a 2-D polynomial):
        see ``docs/reduction.md``. ``none``: the flat's illumination is kept.
    illumination_min_frames : int
        Fewest (dithered) science frames of a set-up and filter for a night-sky
        illumination model; fewer: the step is skipped and the products say why.
    illumination_degree : int
        Total degree of the 2-D polynomial of the illumination model.
    hot_nsigma : float
        A master-dark pixel above median + ``hot_nsigma`` robust sigma is HOT.
    pixel_scale_arcsec : float or None
        Arcseconds per (binned) pixel, for the FWHM in arcseconds; ``None``: from
        the header (``PIXSCALE``, ``SECPIX``, the WCS), see
        :mod:`nightlog.header.pointing`.
    min_frames : mapping
        Fewest frames for a master, per ``bias``/``dark``/``flat``.
    missing : mapping
        Per kind, what reducing a frame does when no master of that kind matches:
        ``reduce-without``, ``hold`` or ``fail`` (:class:`~nightlog.states.MissingPolicy`);
        a kind absent here follows the site's ``[calibration] on_missing``.
    fallback_nights : mapping
        Per kind, a group of one night with fewer than ``min_frames`` frames is
        combined with the same group's frames of the nights within this many nights
        (nearest first) into one master flagged multi-night; absent or 0: never.
    provisional_min_frames : mapping
        Per kind, a group with fewer than ``min_frames`` but at least this many frames
        (and no multi-night master) gives a master flagged provisional; absent: never.
    calibration_keys : mapping
        NormalizedHeader fields that must agree between a master and its frames.
    setup_keys : tuple of str
        Fields joined into ``NormalizedHeader.setup_key``.
    amplifiers : tuple of AmplifierSpec, 'all' or None
        A detector read through several amplifiers, one image extension each
        (``amplifiers = [{ hdu = "AMP1", ... }, ...]``), or ``'all'``: every image
        extension is one. See :mod:`nightlog.header.amplifiers`.
    crosstalk : tuple of tuple of float or None
        ``crosstalk[i][j]``: fraction of amplifier ``i``'s signal seen in ``j``.
    ccd : str or None
        Keyword naming the CCD of each extension of a mosaic (TOML ``ccd``).
    """

    name: str
    description: str = ""
    extends: str | None = None
    priority: int = 0
    match: tuple[MatchRule, ...] = ()
    # Where each value is read from.
    type_keywords: tuple[str, ...] = ("IMAGETYP", "OBSTYPE", "FRAMETYP", "FRAME")
    frame_types: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: DEFAULT_FRAME_TYPES)
    exptime_keywords: tuple[str, ...] = ("EXPTIME", "EXPOSURE", "ITIME", "EXP_TIME")
    filter_keywords: tuple[str, ...] = ("FILTER", "FILTERS", "FILTER1", "FILTNAME")
    no_filter_values: tuple[str, ...] = ("NONE", "NOFILT", "NO FILTER", "NOFILTER", "N/A")
    date_keywords: tuple[str, ...] = ("DATE-OBS", "DATE_OBS")
    date_formats: tuple[str, ...] = ("iso",)
    time_keywords: tuple[str, ...] = ("TIME-OBS", "UTC-OBS", "UTSTART", "UT")
    mjd_keywords: tuple[str, ...] = ("MJD-OBS",)
    jd_keywords: tuple[str, ...] = ("JD-OBS", "JD")
    site: Site | None = None
    longitude_keywords: tuple[str, ...] = ("SITELONG", "LONG-OBS", "LONGITUD", "OBSLONG")
    longitude_west_positive: bool = False
    instrument_keywords: tuple[str, ...] = ("INSTRUME",)
    detector_keywords: tuple[str, ...] = ("DETECTOR",)
    binning_keywords: tuple[tuple[str, ...], ...] = (
        ("CCDSUM",), ("XBINNING", "YBINNING"), ("CCDBIN1", "CCDBIN2"), ("BINX", "BINY"),
    )
    readout_keywords: tuple[str, ...] = ("READOUTM", "READMODE")
    gain_keywords: tuple[str, ...] = ("GAIN", "EGAIN")
    gain_setting_keywords: tuple[str, ...] = ()
    offset_keywords: tuple[str, ...] = ()
    bayer_keywords: tuple[str, ...] = ("BAYERPAT",)
    read_noise_keywords: tuple[str, ...] = ("RDNOISE", "READNOIS", "RON")
    ccd_temp_keywords: tuple[str, ...] = ("CCD-TEMP", "CCDTEMP", "DET-TEMP")
    set_temp_keywords: tuple[str, ...] = ("SET-TEMP", "SETTEMP")
    saturation_keywords: tuple[str, ...] = ("SATURATE",)
    object_keywords: tuple[str, ...] = ("OBJECT", "OBJNAME")
    # Overrides of header values.
    gain: float | None = None
    #: ``gain = "measured"`` in the TOML: the gain measured by photon transfer on the
    #: master flat is used before the header's.
    gain_measured: bool = False
    read_noise: float | None = None
    saturation: float | None = None
    gain_table: Mapping[float, float] = field(default_factory=lambda: MappingProxyType({}))
    bit_depth: int | None = None
    bias_max_exptime: float | None = None
    read_noise_map: bool = False
    noisy_factor: float = 3.0
    # Regions.
    datasec: str | None = "DATASEC"
    ccdsec: str | None = "CCDSEC"
    overscan: str | None = "BIASSEC"
    trim: str | None = "TRIMSEC"
    full_shape: tuple[int, int] | None = None
    window_source: str = "none"
    lenient_sections: bool = False
    subtract_overscan: bool = False
    overscan_skip_columns: int = 0
    overscan_fit_degree: int | None = None
    overscan_niterate: int = 0
    overscan_low_reject: float = 3.0
    overscan_high_reject: float = 3.0
    flat_scale_region: str | None = None
    flat_scale_fraction: float = 0.5
    # Calibration policy.
    darks_scale: bool = True
    dark_scaling: str = "linear"
    dark_temp_tolerance: float = 1.0
    dark_temperature_scaling: str = "off"
    dark_doubling_temperature: float | None = None
    dark_doubling_temperature_err: float | None = None
    # Bad-pixel thresholds (the bit plane).
    dead_low: float = 0.5
    dead_high: float | None = None
    low_response: float | None = 0.5
    hot_nsigma: float = 5.0
    illumination: str = "none"
    illumination_min_frames: int = 5
    illumination_degree: int = 2
    pixel_scale_arcsec: float | None = None
    min_frames: Mapping[str, int] = field(default_factory=lambda: DEFAULT_MIN_FRAMES)
    missing: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fallback_nights: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    provisional_min_frames: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}))
    calibration_keys: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: DEFAULT_CALIBRATION_KEYS)
    setup_keys: tuple[str, ...] = _SETUP
    file_patterns: tuple[str, ...] = ()
    # Multi-amplifier detectors written as one image extension per amplifier.
    amplifiers: tuple[AmplifierSpec, ...] | str | None = None
    crosstalk: tuple[tuple[float, ...], ...] | None = None
    ccd: str | None = None

    @property
    def multi_amplifier(self) -> bool:
        """Whether frames of this camera are assembled from amplifier extensions."""
        return self.amplifiers is not None

    @property
    def amplifier_specs(self) -> tuple[AmplifierSpec, ...] | None:
        """The amplifiers the profile lists; ``None`` for ``"all"`` (or none)."""
        return None if isinstance(self.amplifiers, str) else self.amplifiers

    @property
    def quantisation_step(self) -> float | None:
        """ADU between two values the converter can give (``2**(16 - bit_depth)``);
        ``None`` when the bit depth is not given."""
        return None if self.bit_depth is None else float(2 ** (16 - self.bit_depth))

    @property
    def bit_depth_saturation(self) -> float | None:
        """The highest stored value, ``(2**bits - 1) * 2**(16 - bits)`` ADU."""
        if self.bit_depth is None:
            return None
        return float((2**self.bit_depth - 1) * 2 ** (16 - self.bit_depth))

    def gain_for_setting(self, setting: float | None) -> float | None:
        """e-/ADU of ``setting`` from ``gain_table`` (``None``: not in it)."""
        if setting is None:
            return None
        return self.gain_table.get(float(setting))

    def classify(self, raw_type: str | None) -> str:
        """Frame kind of a raw type value: ``'bias'``, ..., or ``'unknown'``."""
        return classify_frame_type(raw_type, self.frame_types)

    def flat_scale_slices(self, shape: tuple[int, int]) -> Section:
        """Region (numpy slices) over which flats of ``shape`` are normalised.

        ``flat_scale_region`` when set and inside the image, else the central box
        covering ``flat_scale_fraction`` of each axis.

        Raises
        ------
        SectionError
            ``flat_scale_region`` does not fit an image of ``shape``.
        """
        if self.flat_scale_region is not None:
            return parse_section(self.flat_scale_region, shape)
        ny, nx = shape

        def _central(size: int) -> slice:
            keep = max(1, round(size * self.flat_scale_fraction))
            start = (size - keep) // 2
            return slice(start, start + keep)

        return _central(ny), _central(nx)

    def usable_overscan(self, biassec: str, shape: tuple[int, int]) -> Section:
        """Numpy slices of the overscan ``biassec`` without the columns next to the data.

        ``overscan_skip_columns`` columns are dropped on the side facing the image:
        the first ones for an overscan after the data (LFC ``[2049:2080,1:4127]``
        with 7 skipped is ``[:4127, 2055:]``), the last ones for one before it.

        Raises
        ------
        SectionError
            ``biassec`` does not fit ``shape``, is reversed in x, or is no wider
            than the columns to skip.
        """
        rows, cols = parse_section(biassec, shape)
        start, stop, step = cols.indices(shape[1])
        if step != 1:
            raise SectionError(f"overscan {biassec!r} runs backwards in x; give it forwards")
        skip = self.overscan_skip_columns
        if skip == 0:
            return rows, cols
        if stop - start <= skip:
            raise SectionError(f"overscan {biassec!r} is {stop - start} columns wide; "
                               f"profile {self.name!r} skips {skip}")
        if start == 0:  # overscan before the data
            return rows, slice(start, stop - skip)
        return rows, slice(start + skip, stop)
