"""The simulated cameras, described as data.

Every number of the LFC and the Aspen comes from the reference header dumps and
pixel statistics of the lecture's two datasets (Palomar LFC chip 0, a cryogenic
camera; the Apogee Aspen CG16M under MaxIm DL, a thermo-electric one). The
``mef`` (an LCO Sinistro, four amplifiers) and ``cmos`` (a ZWO ASI1600MM Pro
under N.I.N.A.) cameras follow the conventions of
``shared/reference/mef_cmos_headers.md``; their site, sky and field numbers
live here, their amplifiers in :mod:`nightlog.simulate.sinistro` and their
CMOS electronics in :mod:`nightlog.simulate.zwo`. Where a value is a choice
rather than a measurement, the comment beside it says so.

Nothing here draws random numbers or builds arrays: :mod:`nightlog.simulate.detector`
turns a :class:`CameraModel` into the fixed detector maps of one night.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from nightlog.errors import ConfigurationError
from nightlog.simulate.geometry import Geometry, scaled_geometry

__all__ = [
    "ASPEN",
    "CAMERAS",
    "LFC",
    "MOSAIC",
    "NINA_CMOS",
    "NINA_CMOS_COLOUR",
    "SINISTRO",
    "CameraModel",
    "FilterModel",
    "Geometry",
    "Target",
    "camera_by_name",
    "scaled_geometry",
]

HeaderStyle = Literal["lfc", "maximdl", "sinistro", "mosaic", "nina"]


@dataclass(frozen=True, slots=True)
class FilterModel:
    """How a filter is flat-fielded and how bright the night sky is through it.

    Attributes
    ----------
    name : str
        The value of the camera's ``FILTER`` keyword (``"g'"`` on the LFC).
    flat_exptime : float
        Nominal flat exposure in seconds (the shortest allowed for twilight flats).
    flat_level_adu : float
        Mean flat signal above bias in ADU (for twilight flats: the auto-exposure target).
    sky_rate_e : float
        Night-sky background in electrons per second per pixel at full size.
    star_rate_scale : float
        Multiplies the star fluxes (throughput of the filter relative to ``1``).
    """

    name: str
    flat_exptime: float
    flat_level_adu: float
    sky_rate_e: float
    star_rate_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class Target:
    """The science target of the night (J2000 position)."""

    name: str
    ra_deg: float
    dec_deg: float


@dataclass(frozen=True, slots=True)
class CameraModel:
    """Everything that makes one camera's night look like that camera.

    Units: ADU for levels written to the file, electrons (e⁻) inside the detector,
    seconds for times, degrees for angles, pixels of the full-size frame for sizes.
    """

    name: str
    description: str
    header_style: HeaderStyle
    # Geometry (full size): image rows, image columns, overscan columns to the right.
    ny: int
    nx_data: int
    n_overscan: int
    # Site.
    longitude_deg: float  # east positive
    latitude_deg: float
    altitude_m: float
    reference_night: dt.date
    # Electronics.
    gain: float  # true gain, e-/ADU
    header_gain: float | None  # what the GAIN keyword claims, if the camera writes one
    read_noise_e: float
    bias_level_adu: float
    bias_edge_excess_adu: float  # extra level at column 1, decaying to the right
    bias_edge_scale_px: float  # e-folding width of that excess (full-size columns)
    bias_row_slope_adu: float  # level change from the first to the last row
    bias_column_rms_adu: float  # fixed column-to-column pattern
    bias_pixel_rms_adu: float  # fixed pixel-to-pixel pattern
    bias_frame_jitter_adu: float  # random offset of each frame (the overscan follows it)
    bias_drift_adu: float  # level rise of long exposures: drift × (1 - exp(-t / tau))
    bias_drift_tau_s: float
    overscan_offset_adu: float  # overscan level minus the image bias level, every frame
    overscan_lit_offset_adu: float  # extra overscan level in illuminated frames
    leak_fraction: float  # first overscan column sees this fraction of the last image column
    leak_columns: int  # columns of the overscan reached by that leak (full size)
    # Dark current.
    dark_rate_e: float  # median dark current, e-/s/pixel
    dark_rate_spread: float  # log-normal sigma of the pixel-to-pixel dark variation
    hot_pixels: int  # number at full size with dark current > hot_threshold_e
    hot_threshold_e: float  # e-/s
    hot_max_e: float  # e-/s
    warm_columns: int  # partial columns of raised dark current (full size)
    warm_column_rate_e: tuple[float, float]  # range, e-/s
    # Flat field.
    vignetting: float  # fractional illumination loss in the corners
    illumination_tilt: float  # fractional left-to-right illumination gradient
    pixel_response_rms: float  # pixel-to-pixel sensitivity spread
    dust_donuts: int
    dead_pixels: int  # pixels with response < 0.5 (full size)
    dead_columns: int
    # Sky and stars.
    filters: tuple[FilterModel, ...]
    dark_filter: str | None  # FILTER written on darks (None: keyword absent)
    bias_filter: str | None
    target: Target
    science_exptime: float
    science_filters: tuple[str, ...]  # cycled through the science frames
    fwhm_px: float  # seeing, full-size pixels
    stars: int  # stars on a full-size science frame
    star_flux_e: tuple[float, float]  # faintest and brightest star, total e-/s
    cosmic_rate: float  # events per pixel per second (0.025 cm⁻² s⁻¹ × pixel area)
    dark_exptimes: tuple[float, ...]
    darktime_overhead_s: float
    exptime_jitter_s: float  # recorded exposures of >= 60 s exceed the nominal by up to this
    readout_s: float  # time between the end of one exposure and the start of the next
    twilight_flats: bool  # True: sky flats with auto exposure; False: dome flats
    twilight_fade_s: float  # e-folding time of the twilight sky during the flats
    twilight_start_level: float  # first flat's level / target (auto exposure at its minimum)
    extinction_mag: float  # per airmass
    # Defaults for a night.
    default_counts: tuple[int, int, int, int]  # bias, dark per exptime, flat per filter, science
    # Dark current against the set temperature: D(T) = dark_rate_e × 2^((T - set_temp_c) / T_d)
    # (None: the camera is simulated at its one set point only).
    set_temp_c: float | None = None  # set point (°C) written as SET-TEMP; dark_rate_e is at it
    dark_doubling_k: float | None = None  # T_d: K over which the dark current doubles
    # Night-sky illumination (simulate_night's knobs; the defaults are every camera's
    # night as it always was).
    twilight_gradient: float = 0.0  # flats × (1 + g·x), x -1…1: a gradient the night sky lacks
    sky_gradient: float = 0.02  # largest random gradient of each science frame's sky
    dither_px: float = 0.0  # rms pointing offset between science frames, full-size pixels

    def filter_model(self, name: str) -> FilterModel:
        """The :class:`FilterModel` called ``name``.

        Raises
        ------
        ConfigurationError
            The camera has no such filter.
        """
        for model in self.filters:
            if model.name == name:
                return model
        raise ConfigurationError(f"camera {self.name!r} has no filter {name!r}")


# Palomar Large Format Camera, chip 0 (SITe SI002, 15 µm pixels, Hale 5 m, f/7.5).
LFC = CameraModel(
    name="lfc",
    description="Palomar Large Format Camera chip 0 (cryogenic SITe SI002)",
    header_style="lfc",
    ny=4128, nx_data=2048, n_overscan=32,
    longitude_deg=-116.9, latitude_deg=33.4, altitude_m=1706.0,
    reference_night=dt.date(2016, 1, 15),
    gain=2.37,  # photon-transfer gain measured from flats 014/015; the header claims 1.100
    header_gain=1.100,
    read_noise_e=13.0,  # 5.47 ADU from a bias pair × 2.37 e-/ADU
    bias_level_adu=1140.0,
    bias_edge_excess_adu=230.0,  # > 1350 ADU at column 1, back to ~1140 by column 300-400
    bias_edge_scale_px=80.0,
    bias_row_slope_adu=4.0,
    bias_column_rms_adu=0.8,
    bias_pixel_rms_adu=0.6,
    bias_frame_jitter_adu=2.0,
    # Medians of 7/70/300 s darks sit 0/+9/+22 ADU above the bias while the dark
    # current is negligible: a level drift the overscan tracks (science overscan +20).
    bias_drift_adu=23.0, bias_drift_tau_s=150.0,
    overscan_offset_adu=-2.0,  # whole-frame median 1137 vs image 1138
    overscan_lit_offset_adu=0.0,
    leak_fraction=0.005, leak_columns=7,  # light leaks into columns 2049-2055
    dark_rate_e=0.0005,  # cryogenic: a few e- per hour
    dark_rate_spread=0.3,
    hot_pixels=150, hot_threshold_e=0.5, hot_max_e=20.0,
    warm_columns=2, warm_column_rate_e=(0.02, 0.08),
    vignetting=0.06, illumination_tilt=0.03, pixel_response_rms=0.01,
    dust_donuts=4, dead_pixels=120, dead_columns=1,
    filters=(
        # Dome flats: g' ~21500 ADU raw at 70 s, i' ~22200 ADU raw at 7 s (bias ~1140).
        FilterModel("g'", 70.0, 20160.0, sky_rate_e=9.0, star_rate_scale=1.0),
        FilterModel("i'", 7.0, 20860.0, sky_rate_e=22.0, star_rate_scale=1.3),
    ),
    dark_filter="r'", bias_filter="i'",
    target=Target("vv124_1", ra_deg=139.00917, dec_deg=52.84000),  # VV 124 (UGC 4879)
    science_exptime=300.0, science_filters=("g'", "i'"),
    fwhm_px=6.5,  # 1.2 arcsec seeing at 0.182 arcsec/pixel
    stars=600, star_flux_e=(300.0, 3.0e6),
    cosmic_rate=0.025 * (15e-4) ** 2,
    dark_exptimes=(7.0, 70.0, 300.0),
    darktime_overhead_s=0.672,  # DARKTIME - EXPTIME of the reference flats
    exptime_jitter_s=0.07,  # 70.001, 70.011, 300.014, 300.062 s
    readout_s=116.5,  # flats repeat every EXPTIME + 116.5 s
    twilight_flats=False, twilight_fade_s=1.0, twilight_start_level=1.0,
    extinction_mag=0.15,
    default_counts=(6, 5, 5, 8),
)

# Apogee (Andor) Aspen CG16M, KAF-16803 (9 µm pixels), 0.4 m at Feder Observatory.
ASPEN = CameraModel(
    name="aspen",
    description="Apogee/Andor Aspen CG16M under MaxIm DL 6.18 + ACP (thermo-electric)",
    header_style="maximdl",
    ny=4096, nx_data=4096, n_overscan=13,
    longitude_deg=-96.45328, latitude_deg=46.86678, altitude_m=311.0,
    reference_night=dt.date(2018, 8, 22),
    gain=1.5, header_gain=None, read_noise_e=10.0,
    bias_level_adu=1010.0,  # a choice: sky of a 90 s light ~1100-1200 ADU, CBLACK 1086
    bias_edge_excess_adu=0.0, bias_edge_scale_px=1.0,
    bias_row_slope_adu=6.0, bias_column_rms_adu=1.5, bias_pixel_rms_adu=0.8,
    bias_frame_jitter_adu=1.0,
    bias_drift_adu=0.0, bias_drift_tau_s=1.0,
    overscan_offset_adu=25.0,  # overscan counts above the mean bias
    overscan_lit_offset_adu=50.0,  # ~50 counts more in flats and lights (light leakage)
    leak_fraction=0.0, leak_columns=0,
    dark_rate_e=0.015,  # ~0.01 ADU/s at 1.5 e-/ADU
    dark_rate_spread=0.35,
    hot_pixels=4302, hot_threshold_e=4.0, hot_max_e=400.0,  # 4302 > 4 e-/s in the 90 s dark
    warm_columns=10, warm_column_rate_e=(0.4, 0.9),  # 30-55 ADU columns in a 90 s dark
    vignetting=0.18, illumination_tilt=0.04, pixel_response_rms=0.012,
    dust_donuts=8, dead_pixels=300, dead_columns=1,
    filters=(
        FilterModel("r", 1.0, 20000.0, sky_rate_e=2.0, star_rate_scale=1.0),
        FilterModel("g", 1.0, 20000.0, sky_rate_e=1.3, star_rate_scale=0.8),
    ),
    dark_filter=None, bias_filter=None,
    target=Target("kelt-16-b", ra_deg=314.268333, dec_deg=31.661000),  # 20 57 04.40 +31 39 39.6
    science_exptime=90.0, science_filters=("r",),
    fwhm_px=5.4,  # FWHM keyword of the reference light
    stars=900, star_flux_e=(40.0, 3.0e5),
    cosmic_rate=0.0167 * (9e-4) ** 2,  # 1 cm⁻² min⁻¹ near sea level
    dark_exptimes=(90.0, 30.0, 300.0),
    darktime_overhead_s=0.0, exptime_jitter_s=0.0,
    readout_s=24.0,  # AutoFlat frames every ~25.6 s at ~1 s exposures
    # Exposures 1.0 s ×5 then 1.02, 1.06, 1.11, 1.16, 1.21 s: the sky fades 4.4 % per frame.
    twilight_flats=True, twilight_fade_s=590.0, twilight_start_level=1.167,
    extinction_mag=0.2,
    default_counts=(6, 5, 6, 8),
    set_temp_c=-20.0,  # SET-TEMP of the reference frames
    dark_doubling_k=6.3,  # a choice: silicon CCDs double every ~6-7 K near -20 °C
)

# LCO Sinistro (4K x 4K, 15 µm, 0.389"/px on a 1-m): the site, sky and field of the MEF
# camera; gains, read noise and bias levels are per amplifier (nightlog.simulate.sinistro).
SINISTRO = CameraModel(
    name="mef",
    description="LCO Sinistro 4-amplifier CCD written as MEF (BANZAI's convention)",
    header_style="sinistro",
    ny=4096, nx_data=4096, n_overscan=32,  # per amplifier: 2048 data + 32 columns after them
    longitude_deg=-70.8049, latitude_deg=-30.1673, altitude_m=2198.0,  # Cerro Tololo (lsc)
    reference_night=dt.date(2019, 4, 5),  # a choice
    gain=2.0,  # nominal; per amplifier 1.94-2.07 (choice within the brief's 1.9-2.1)
    header_gain=None, read_noise_e=7.7,  # 7.5-8 e- (LCO's instrument page)
    bias_level_adu=0.0, bias_edge_excess_adu=0.0, bias_edge_scale_px=1.0,
    bias_row_slope_adu=0.0, bias_column_rms_adu=0.0, bias_pixel_rms_adu=0.0,
    bias_frame_jitter_adu=0.0, bias_drift_adu=0.0, bias_drift_tau_s=1.0,
    overscan_offset_adu=0.0, overscan_lit_offset_adu=0.0, leak_fraction=0.0, leak_columns=0,
    dark_rate_e=0.002, dark_rate_spread=0.3,  # cryogenic (choice)
    hot_pixels=400, hot_threshold_e=0.5, hot_max_e=30.0,
    warm_columns=3, warm_column_rate_e=(0.02, 0.06),
    vignetting=0.08, illumination_tilt=0.02, pixel_response_rms=0.008,
    dust_donuts=6, dead_pixels=200, dead_columns=1,
    filters=(
        # Twilight sky flats to ~20000 ADU (saturation is 47500 ADU at 2 e-/ADU).
        FilterModel("rp", 2.0, 20000.0, sky_rate_e=40.0, star_rate_scale=1.0),
        FilterModel("gp", 2.0, 20000.0, sky_rate_e=25.0, star_rate_scale=0.9),
    ),
    dark_filter=None, bias_filter=None,
    target=Target("NGC 2997", ra_deg=146.41164, dec_deg=-31.19109),
    science_exptime=120.0, science_filters=("rp", "gp"),
    fwhm_px=5.1,  # 2.0 arcsec at 0.389 arcsec/pixel
    stars=1500, star_flux_e=(200.0, 2.0e6),
    cosmic_rate=0.025 * (15e-4) ** 2,
    dark_exptimes=(120.0, 300.0),
    darktime_overhead_s=0.0, exptime_jitter_s=0.0,
    readout_s=28.0,  # full-frame readout and overheads (choice)
    twilight_flats=True, twilight_fade_s=600.0, twilight_start_level=1.15,
    extinction_mag=0.12,
    default_counts=(5, 3, 5, 6),
)

# A mosaic of two CCDs of two amplifiers each in one MEF file (multi-CCD keywords of
# GMOS and NOAO Mosaic, nightlog.simulate.mosaic_headers): the MEF camera's pixels,
# site, sky and field, its lower two amplifiers one CCD and its upper two the other.
MOSAIC = replace(SINISTRO, name="mosaic",
                 description="two-CCD mosaic, two amplifiers per CCD, one MEF file "
                             "(CCDNAME per extension)",
                 header_style="mosaic")

# ZWO ASI1600MM Pro (4656 x 3520, 3.8 µm, 12-bit ADC) under N.I.N.A. on a 0.2-m
# refractor (choice): site, sky and field; the electronics are in nightlog.simulate.zwo.
NINA_CMOS = CameraModel(
    name="cmos",
    description="ZWO ASI1600MM Pro CMOS under N.I.N.A. 1.10 (12-bit, two gain settings)",
    header_style="nina",
    ny=3520, nx_data=4656, n_overscan=0,
    # Central Europe (CET, as the reference header's DATE-LOC is UTC+1); a choice.
    longitude_deg=10.0, latitude_deg=50.0, altitude_m=300.0,
    reference_night=dt.date(2021, 3, 2),  # the night of the reference N.I.N.A. header
    gain=1.0, header_gain=None, read_noise_e=1.5,  # nominal at unity gain; see zwo.py
    bias_level_adu=0.0, bias_edge_excess_adu=0.0, bias_edge_scale_px=1.0,
    bias_row_slope_adu=0.0, bias_column_rms_adu=0.0, bias_pixel_rms_adu=0.0,
    bias_frame_jitter_adu=0.0, bias_drift_adu=0.0, bias_drift_tau_s=1.0,
    overscan_offset_adu=0.0, overscan_lit_offset_adu=0.0, leak_fraction=0.0, leak_columns=0,
    dark_rate_e=0.006, dark_rate_spread=0.5,  # ZWO's figure at -10 °C (order of magnitude)
    hot_pixels=2000, hot_threshold_e=0.5, hot_max_e=40.0,
    warm_columns=0, warm_column_rate_e=(0.0, 0.0),
    vignetting=0.25, illumination_tilt=0.02, pixel_response_rms=0.006,
    dust_donuts=10, dead_pixels=150, dead_columns=0,
    filters=(
        # Flat panel: 30000 ADU of the 16-bit file (~half of the 12-bit range).
        FilterModel("L", 2.0, 30000.0, sky_rate_e=6.0, star_rate_scale=1.0),
    ),
    dark_filter=None, bias_filter=None,
    target=Target("M 81", ra_deg=148.88822, dec_deg=69.06530),
    science_exptime=120.0, science_filters=("L",),
    fwhm_px=3.6,  # 2.5 arcsec at 0.7 arcsec/pixel
    stars=700, star_flux_e=(30.0, 3.0e5),
    cosmic_rate=0.0167 * (3.8e-4) ** 2,
    dark_exptimes=(30.0, 60.0, 120.0, 300.0),  # the two science exposures and two others
    darktime_overhead_s=0.0, exptime_jitter_s=0.0,
    readout_s=3.0,
    twilight_flats=False, twilight_fade_s=1.0, twilight_start_level=1.0,
    extinction_mag=0.2,
    default_counts=(5, 3, 5, 6),
)

# The same camera with the colour sensor (ZWO ASI1600MC Pro, RGGB): nightlog.simulate.zwo.
NINA_CMOS_COLOUR = replace(NINA_CMOS, name="cmos-colour",
                           description="ZWO ASI1600MC Pro (RGGB) CMOS under N.I.N.A. 1.10 "
                                       "(12-bit, two gain settings)")

CAMERAS: dict[str, CameraModel] = {
    camera.name: camera
    for camera in (LFC, ASPEN, SINISTRO, MOSAIC, NINA_CMOS, NINA_CMOS_COLOUR)}


def camera_by_name(name: str) -> CameraModel:
    """The camera called ``name`` (case-insensitive).

    Raises
    ------
    ConfigurationError
        No camera of that name; the message lists the known ones.
    """
    key = str(name).strip().lower()
    if key not in CAMERAS:
        known = ", ".join(sorted(CAMERAS))
        raise ConfigurationError(f"unknown camera {name!r}; choose one of: {known}")
    return CAMERAS[key]
