"""Simulated observing nights of real cameras, with the truth that made them.

:func:`simulate_night` writes a seeded, realistic night of raw frames of the
Palomar LFC (chip 0, cryogenic) or the Apogee Aspen CG16M (MaxIm DL, thermo-
electric): biases, darks at several exposure times, flats in two filters and
science frames with sky, stars and cosmic rays, in the order and at the times
the real nights took them, with the real cameras' file names and headers.

Two more cameras follow the conventions of real software rather than a dataset
(``docs/simulate.md`` describes them and their truth): ``mef``, an LCO Sinistro
with four amplifiers in four image extensions (:mod:`~nightlog.simulate.sinistro`,
:mod:`~nightlog.simulate.mef_physics`, :mod:`~nightlog.simulate.mef_headers`,
:mod:`~nightlog.simulate.night_mef`), and ``cmos``, a ZWO ASI1600MM Pro under
N.I.N.A. with two gain settings and a subarray frame (:mod:`~nightlog.simulate.zwo`,
:mod:`~nightlog.simulate.cmos_detector`, :mod:`~nightlog.simulate.cmos_physics`,
:mod:`~nightlog.simulate.cmos_headers`, :mod:`~nightlog.simulate.night_cmos`);
their nights are planned by :mod:`~nightlog.simulate.night_plans`.

Modules: :mod:`~nightlog.simulate.cameras` (the cameras as data),
:mod:`~nightlog.simulate.geometry` (the frame layout after scaling),
:mod:`~nightlog.simulate.schedule` (order, times, names),
:mod:`~nightlog.simulate.detector` (per-night bias, dark and flat maps),
:mod:`~nightlog.simulate.starfield`, :mod:`~nightlog.simulate.cosmics`,
:mod:`~nightlog.simulate.physics` (one frame, electrons to ADU),
:mod:`~nightlog.simulate.cards` and :mod:`~nightlog.simulate.headers` (exact
header card images), :mod:`~nightlog.simulate.fitsfile` (atomic writing),
:mod:`~nightlog.simulate.truth` and :mod:`~nightlog.simulate.night`.

Truth format
------------
For the LFC and the Aspen (the MEF and CMOS truth: ``docs/simulate.md``), beside
the frames, ``truth.json`` (read it back with :func:`load_truth`)::

    format              "nightlog-simulated-night", version 1
    camera, description, night (ISO date the night starts), seed, scale
    shape               [ny, nx] of every raw frame (numpy order)
    image_columns       image columns (columns 0 … image_columns-1 of the raw frame)
    overscan_columns    overscan columns after them; leak_columns of them see light
    image_section, clean_overscan_section   1-based FITS sections
    gain_e_per_adu      the TRUE gain (LFC 2.37; its GAIN keyword says header_gain 1.1)
    read_noise_e, read_noise_adu
    bias_level_adu      nominal level; bias_median_adu: median of the image-area bias map
    overscan_offset_adu overscan level minus image bias level
    dark_current_e_per_s, dark_current_adu_per_s   median of the dark map
    set_temp_c, dark_doubling_k   the night's CCD set point (°C) and the K over which
                        the dark current doubles (Aspen; None for the LFC)
    hot_pixel_threshold_e_per_s, hot_pixels, dead_pixels   counts
    flat_levels_adu     {filter: nominal mean flat signal above bias}; flat_exptimes
    dark_exptimes       the dark exposure times of the night
    arrays              "truth.npz"
    illumination        only when one is set: twilight_gradient, sky_gradient,
                        dither_px (simulate_night's arguments)
    files               one entry per frame in acquisition order:
        name, index, kind (bias/dark/flat/science), imagetyp, object, filter,
        exptime, darktime (s), obs_time (UTC ISO, "Z"), jd, airmass,
        bias_offset_adu  (added to the bias map in this frame, overscan included),
        overscan_extra_adu (added to the overscan only),
        signal_e, signal_adu  (light on a pixel of unit response: lamp/twilight
                               for flats, sky for science, 0 otherwise),
        cosmic_ray_events, cosmic_ray_pixels, cosmic_ray_key, saturated_pixels,
        fwhm_px (FWHM of the stars, pixels; null but for science frames),
        stars_unsaturated (stars wholly on the image whose peak stays below 65535)

and ``truth.npz``::

    bias_adu          float32 (ny, nx)  bias level + fixed structure, ADU (frame offset excluded)
    dark_current_e    float32 (ny, image_columns)  dark current, e-/s (hot pixels included)
    flat              float32 (ny, image_columns)  relative response, mean 1
    hot_pixels        uint32 flat indices (row * nx + col) into the raw frame
    dead_pixels       uint32 flat indices, response < 0.5
    cosmic_rays_NNNN  uint32 flat indices of the pixels hit in frame NNNN (its ``index``)

A raw pixel of the image area is, before rounding and clipping to 0 … 65535::

    bias_adu + bias_offset_adu
      + (flat × signal_e [× twilight gradient (flats) | × sky gradient, + stars]
         + dark_current_e × darktime
         + cosmic rays + noise) / gain_e_per_adu

with noise of variance ``mean + read_noise_e²`` electrons.
"""

from nightlog.simulate.cameras import CAMERAS, CameraModel, camera_by_name
from nightlog.simulate.night import SimulatedNight, simulate_night
from nightlog.simulate.truth import SimulationTruth, load_truth

__all__ = [
    "CAMERAS",
    "CameraModel",
    "SimulatedNight",
    "SimulationTruth",
    "camera_by_name",
    "load_truth",
    "simulate_night",
]
