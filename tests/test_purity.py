"""The reduction core is pure: its steps leave their inputs unchanged, and it reads no file.

The functions are discovered from ``__all__`` of every public module of
``nightlog.reduction``, so steps added later are covered too. Each is called with
arguments from a factory (explicit ones below, or built from the parameter names
and annotations), and every array, uncertainty, mask, bit plane, header and list it
was given is compared with a snapshot taken before the call — even when the call
raises, since a step must not damage its input on the way to an error.

The source of every module of ``nightlog.reduction`` is also walked (``ast``): it must
import nothing from the store, the catalogue or the coordinator, and call nothing
that opens, reads or writes a file.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

import nightlog.reduction
from nightlog.errors import NightlogError
from nightlog.header.amplifier_layout import amplifier_layout
from nightlog.header.amplifiers import AmplifierLayout, ExtensionHeader
from nightlog.reduction.combine import CombineResult, combine
from nightlog.reduction.dark_temperature import DarkTemperature
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.master_options import CombineOptions
from nightlog.reduction.products import ProvenanceEntry
from nightlog.reduction.rejection import ClipSpec
from nightlog.reduction.science import ScienceParameters
from nightlog.reduction.step_summary import sampled_frame_statistics
from nightlog.reduction.stored_frame import stored_frame

SHAPE = (64, 48)
Args = tuple[tuple[Any, ...], dict[str, Any]]


def exposed(seed: int, level: float) -> CCDData:
    """A raw amplifier of ``level`` ADU with its overscan columns at the 1000 ADU bias."""
    frame = make_frame(seed, level)
    frame.data[:, 40:] = make_frame(seed + 50).data[:, 40:]
    return frame


def two_amplifiers() -> AmplifierLayout:
    """Two amplifiers of SHAPE side by side, the second reading from the right."""
    common = {"DATASEC": "[1:40,1:64]", "BIASSEC": "[41:48,1:64]", "GAIN": 2.0,
              "RDNOISE": 5.0, "SATURATE": 60000.0}
    exts = [ExtensionHeader(1, {**common, "DETSEC": "[1:40,1:64]"}, SHAPE),
            ExtensionHeader(2, {**common, "DETSEC": "[80:41,1:64]"}, SHAPE)]
    return amplifier_layout({}, exts, None, crosstalk=((0.0, 0.001), (0.002, 0.0)))


def _temperature_params() -> ScienceParameters:
    """Parameters of a frame whose 10 s master dark is scaled from another set temperature."""
    return ScienceParameters(gain=2.0, read_noise=5.0, saturation=60000.0, exptime=30.0,
                             dark_is_rate=False, dark_exposure=10.0,
                             dark_temperature=DarkTemperature(0.6, 0.02, -20.0, -25.0, "x"))


def make_frame(seed: int = 0, level: float = 1000.0, unit: str = "adu") -> CCDData:
    rng = np.random.default_rng(seed)
    data = rng.normal(level, 10.0, SHAPE).astype(np.float32)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[3, 4] = True
    flags = np.zeros(SHAPE, dtype=np.uint16)
    flags[3, 4] = MaskBit.HOT
    header = fits.Header({"BIASSEC": "[41:48,1:64]", "DATASEC": "[1:40,1:64]",
                          "EXPTIME": 10.0, "IMAGETYP": "LIGHT"})
    return CCDData(data, unit=unit, meta=header, mask=mask, flags=flags,
                   uncertainty=StdDevUncertainty(np.full(SHAPE, 3.0, np.float32)))


def array() -> np.ndarray:
    return np.random.default_rng(5).normal(1000.0, 10.0, SHAPE).astype(np.float32)


def _exposed(ccd: CCDData, seconds: float) -> CCDData:
    ccd.header["EXPTIME"] = seconds
    return ccd


def _dark_combination() -> CombineResult:
    """Darks of 10 and 100 s less a master bias, with their share of its error."""
    frames = [make_frame(seed, 100.0) for seed in range(6)]
    return combine(frames, scale=[0.1, 0.1, 0.1, 0.01, 0.01, 0.01],
                   clip=ClipSpec(spread="mad", max_iters=1), offset_response=1.5)


def _flat_combination() -> CombineResult:
    """Flats of about 20 000 ADU, each scaled by its median, with their statistics."""
    frames = [make_frame(seed, 20000.0) for seed in range(5)]
    return combine(frames, scale="median", clip=ClipSpec(spread="mad", max_iters=1),
                   frame_stat=sampled_frame_statistics)


@dataclass(frozen=True)
class _Stored:
    """A loader's stored image: 16-bit integers with BZERO 32768 and a BLANK pixel."""

    raw: np.ndarray
    bscale: float = 1.0
    bzero: float = 32768.0
    blank: int | None = -32768
    header: fits.Header = field(default_factory=fits.Header)


def stored() -> _Stored:
    raw = (np.random.default_rng(6).normal(1000.0, 10.0, SHAPE) - 32768).astype(">i2")
    raw[2, 3] = -32768
    return _Stored(raw)


def plane() -> np.ndarray:
    bits = np.zeros(SHAPE, dtype=np.uint16)
    bits[1, 1] = MaskBit.SATURATED
    return bits


EXPLICIT: dict[str, Callable[[], Args]] = {
    "cosmics_sharpness.refine_cosmic_rays": lambda: (
        (array(), np.full(SHAPE, 25.0, np.float32), array() > 1000, array() > 1010),
        {"seed_sigma": 4.5, "grow_sigma": 2.5, "psf_contrast": 1.35}),
    "cosmics_stars.refine_on_stars": lambda: (
        (array(), np.full(SHAPE, 100.0, np.float32), array() > 1025, array() > 1010),
        {"seed_sigma": 4.5, "grow_sigma": 2.5}),
    "cosmics_background.refine_on_background": lambda: (
        (array(), np.full(SHAPE, 100.0, np.float32), array() > 1025, array() > 1010),
        {"seed_sigma": 4.5, "grow_sigma": 2.5}),
    "cosmics_background.background_mesh": lambda: ((array(), array() > 1010), {}),
    "cosmics_sharpness.clean_pixels": lambda: ((array(), array() > 1010, array() > 1000), {}),
    "overscan.subtract_overscan": lambda: ((make_frame(),), {"model_degree": 1}),
    "overscan.overscan_levels": lambda: ((make_frame(),), {"method": "clipped_mean"}),
    "trim.trim_image": lambda: ((make_frame(),), {}),
    "window.crop_to_window": lambda: ((make_frame(),), {"crop": (2, 20, 3, 30)}),
    "calibrate.subtract_bias": lambda: ((make_frame(1), make_frame(2, 100.0)), {}),
    "calibrate.subtract_dark": lambda: ((make_frame(1), make_frame(2, 5.0)),
                                        {"dark_exposure": 10.0, "data_exposure": 30.0}),
    "stored_frame.stored_frame": lambda: ((stored(),), {}),
    "stored_frame.as_float32": lambda: ((stored_frame(stored()),), {}),
    "stored_frame.gather_tile": lambda: (([stored_frame(stored()), array().reshape(-1)], 5, 70),
                                         {}),
    "bias_share.bias_share": lambda: ((_dark_combination(), array() > 990.0), {}),
    "bias_share.with_bias_share": lambda: ((_dark_combination(), make_frame(7)), {}),
    "dark_plane.calibrated_dark_uncertainty": lambda: (
        (_dark_combination(), make_frame(7), "average", ClipSpec(spread="mad", max_iters=1)),
        {}),
    "dark_plane.dark_plane_factor": lambda: (
        ([6.0] * 4, [0.1, 0.1, 0.01, 0.01], 2.5, "average",
         ClipSpec(spread="mad", max_iters=1)), {}),
    "flat_plane.combination_factors": lambda: ((5, "average", ClipSpec(spread="mad")), {}),
    "flat_plane.flat_uncertainty": lambda: (
        (_flat_combination(), "average", ClipSpec(spread="mad", max_iters=1)),
        {"bias": make_frame(7), "dark": make_frame(8, 0.1), "exptimes": [10.0] * 5}),
    "calibrate.flat_correct": lambda: ((make_frame(1), make_frame(2, 1.0, "")),
                                       {"min_value": 0.5}),
    "uncertainty.create_uncertainty": lambda: ((make_frame(),),
                                               {"gain": 2.0, "read_noise": 5.0,
                                                "add_to_existing": True}),
    "uncertainty.noise_variance": lambda: ((array(),), {"gain": 2.0, "read_noise": 5.0}),
    "mask.mask_saturated": lambda: ((array(), 1000.0), {}),
    "mask.hot_pixels_from_dark": lambda: ((make_frame(),), {}),
    "mask.dead_pixels_from_flat": lambda: ((make_frame(),), {"high": 1.01}),
    "flat_response.dark_region": lambda: ((array() > 1000,), {}),
    "flat_response.vignetted_from_flat": lambda: ((make_frame(2, 1.0, ""),), {}),
    "flat_response.large_scale_response": lambda: ((make_frame(2, 1.0, ""),), {"box": 4}),
    "mask.combine_masks": lambda: ((plane(),), {"flags": {MaskBit.HOT: array() > 1000}}),
    "mask.describe_bits": lambda: ((5,), {}),
    "mask.pixels_with": lambda: ((plane(), MaskBit.SATURATED), {}),
    "characterise.read_noise_from_biases": lambda: ((make_frame(1), make_frame(2)), {}),
    "characterise.gain_from_flats": lambda: (
        (make_frame(1, 20000.0), make_frame(2, 18000.0), make_frame(3), make_frame(4)), {}),
    "iraf_rejection.reject_by_frame": lambda: (
        (np.random.default_rng(0).normal(100.0, 5.0, (6, 48)).astype(np.float32),
         ClipSpec(spread="avsigclip", nkeep=-2)), {"scales": np.linspace(1.0, 2.0, 6)}),
    "photon_transfer.gain_from_photon_transfer": lambda: (
        ([make_frame(1, 20000.0), make_frame(2, 18000.0), make_frame(5, 40000.0),
          make_frame(6, 37000.0)],), {"master_bias": make_frame(3), "read_noise_adu": 5.0}),
    "characterise.frame_statistics": lambda: ((make_frame(),), {"region": "[1:10,1:10]"}),
    "characterise.dark_current": lambda: ((make_frame(),), {"exposure": 10.0}),
    "products.to_hdulist": lambda: ((make_frame(),), {}),
    "interchange.legal_header": lambda: ((make_frame().header,), {}),
    "interchange.as_output": lambda: ((make_frame(),), {
        "unit": "electron", "gain": 2.0, "read_noise": 5.0, "saturation": 60000.0}),
    "interchange.time_cards": lambda: ((dt.datetime(2016, 1, 16, 4, 45, 54),
                                        dt.datetime(2016, 1, 16, 4, 50, 54)), {}),
    "products.add_history": lambda: ((make_frame(), "a step"), {}),
    "products.set_keywords": lambda: ((make_frame(),), {"keywords": {"NLTEST": "x"}}),
    "rejection.combine_tile": lambda: (
        (array()[:5, :20].copy(),),
        {"method": "average", "clip": ClipSpec(centre="median", spread="mad"), "nlow": 1,
         "nhigh": 1, "weights": np.ones(5)}),
    "mean_clip.clip_about_mean": lambda: (
        (array()[:5, :20].copy(), ClipSpec(centre="mean", spread="std")),
        {"method": "average"}),
    "mean_clip.mean_clip_applies": lambda: (
        (ClipSpec(centre="mean"),), {"method": "sum", "nlow": 0, "nhigh": 0,
                                     "weighted": False}),
    "scaling.resolve_region": lambda: (("[1:10,1:20]", SHAPE), {}),
    "stack.plan_memory": lambda: ((5, SHAPE, 1 << 30, 1, False), {}),
    "science.reduce_science": lambda: (
        (make_frame(1),),
        {"bias": make_frame(2, 100.0), "dark": make_frame(3, 5.0),
         "flat": make_frame(4, 1.0, ""),
         "params": ScienceParameters(gain=2.0, read_noise=5.0, saturation=60000.0,
                                     exptime=10.0, overscan=None, trim="[1:48,1:64]",
                                     dark_is_rate=False, dark_exposure=10.0)}),
    "science_dark.master_dark_for": lambda: (
        (make_frame(3, 5.0), None, _temperature_params(), 10.0), {}),
    "science_dark.subtract_master_dark": lambda: (
        (make_frame(1), make_frame(3, 5.0)),
        {"params": _temperature_params(), "exposure": 30.0, "interpolated": False,
         "how": "linear"}),
    "science_dark.dark_parameters": lambda: ((_temperature_params(), 10.0, False), {}),
    "dark_temperature.scale_dark_temperature": lambda: (
        (make_frame(3, 5.0),), {"factor": 0.6, "factor_err": 0.02, "from_c": -20.0,
                                "to_c": -25.0, "note": "fitted"}),
    "bad_pixels.bad_pixel_plane": lambda: (
        (make_frame(1),),
        {"bias": make_frame(2, 100.0), "dark": make_frame(3, 5.0),
         "flat": make_frame(4, 1.0, ""),
         "params": ScienceParameters(gain=2.0, read_noise=5.0, saturation=60000.0,
                                     exptime=10.0, overscan=None, trim="[1:48,1:64]")}),
    "bad_pixels.count_bits": lambda: ((plane(),), {}),
    "bad_pixels.master_plane": lambda: ((), {
        "bias": make_frame(2, 100.0), "dark": make_frame(3, 5.0),
        "flat": make_frame(4, 1.0, ""),
        "params": ScienceParameters(gain=2.0, read_noise=5.0, saturation=60000.0)}),
    "bad_pixels.role_bits": lambda: (
        ("flat", make_frame(4, 1.0, ""),
         ScienceParameters(gain=2.0, read_noise=5.0, saturation=60000.0)), {}),
    "bad_pixels.plane_of": lambda: (
        ({"flat": plane(), "dark": plane() | np.uint16(MaskBit.HOT)},), {
            "params": ScienceParameters(gain=2.0, read_noise=5.0, saturation=60000.0),
            "crops": {"flat": (2, 20, 3, 30), "dark": (2, 20, 3, 30)}}),
    "bad_pixels.plane_thresholds": lambda: (
        (ScienceParameters(gain=2.0, read_noise=5.0, saturation=None),), {}),
    "step_summary.summary_sample": lambda: ((make_frame().data,), {"size": 100}),
    "step_summary.summary_median": lambda: ((make_frame().data,), {"size": 100}),
    "step_summary.sampled_frame_statistics": lambda: ((make_frame().data,), {"size": 100}),
    "amplifiers.assemble_amplifiers": lambda: ((
        [make_frame(1), make_frame(2)], two_amplifiers()), {"model_degree": 2}),
    "amplifiers.prepare_amplifier": lambda: ((
        make_frame(1), two_amplifiers().amplifiers[1], two_amplifiers()), {}),
    "amplifier_numbers.measure_amplifier_read_noise": lambda: ((
        [make_frame(1), make_frame(2)], [make_frame(3), make_frame(4)], two_amplifiers()), {}),
    "amplifier_numbers.measure_amplifier_gains": lambda: ((
        [exposed(1, 20000.0), exposed(2, 20000.0)],
        [exposed(3, 18000.0), exposed(4, 18000.0)], two_amplifiers()),
        {"master_bias": CCDData(np.zeros((64, 80), np.float32), unit="electron")}),
    "master_frame.combined_unit": lambda: ((_dark_combination(),), {}),
    "master_frame.no_data_flags": lambda: ((_dark_combination(),), {}),
    "master_frame.master_frame": lambda: (
        (_dark_combination(), u.adu, plane(), "a master"),
        {"data": array(), "uncertainty": array()}),
    "master_frame.robust_statistics": lambda: ((array(),), {}),
    "master_options.describe_combine": lambda: ((CombineOptions(),), {}),
    "master_options.noise_model_options": lambda: ((CombineOptions(), [2.0] * 3, [5.0] * 3), {}),
    "dark_interpolation.interpolate_dark": lambda: (
        (_exposed(make_frame(1, 5.0), 10.0), _exposed(make_frame(2, 30.0), 60.0)),
        {"exposure": 30.0}),
    "read_noise_map.read_noise_map": lambda: (
        ([make_frame(i) for i in range(3)], make_frame(9).data), {"quantisation_step": 4.0}),
    "read_noise_map.noisy_pixels": lambda: ((array(),), {"factor": 3.0}),
    "science.reduce_science#cmos": lambda: (
        (make_frame(1),),
        {"bias": make_frame(2, 100.0), "dark": _exposed(make_frame(3, 5.0), 5.0),
         "flat": make_frame(4, 1.0, ""), "dark2": _exposed(make_frame(5, 20.0), 20.0),
         "read_noise_map": np.full(SHAPE, 3.0, dtype=np.float32),
         "params": ScienceParameters(gain=2.0, read_noise=5.0, saturation=60000.0,
                                     exptime=10.0, overscan=None, trim="[1:48,1:64]",
                                     darks_scale=False, quantisation_step=16.0)}),
    "quality.measure_quality": lambda: ((make_frame(),), {"bits": plane(), "gain": 2.0,
                                                          "pixel_scale_arcsec": 0.2,
                                                          "airmass": 1.1}),
    "psf.fit_moffat": lambda: ((array()[:11, :11] - 990.0,), {"x0": 5.0, "y0": 5.0,
                                                              "fwhm0": 2.0}),
    "psf.moffat_fwhm": lambda: ((2.0, 2.5), {}),
    "master_options.configured_options": lambda: ((CombineOptions(),), {
        "kind": "flat", "reject": "avsigclip", "centre": "median", "lsigma": 3.0,
        "hsigma": 3.0, "max_iters": None, "nkeep": 1, "frame_scales": True,
        "gains": [2.0] * 3, "read_noises": [5.0] * 3}),
    "products.provenance_table": lambda: (([ProvenanceEntry("raw", "/raw/a.fits", "0" * 64, 1),
                                            ProvenanceEntry("input", "/raw/b.fits", "1" * 64,
                                                            2, False, "too warm")],), {}),
}

_BY_NAME: dict[str, Callable[[], Any]] = {
    "frames": lambda: [make_frame(i) for i in range(3)],
    "inputs": lambda: [make_frame(i) for i in range(3)],
    "exptimes": lambda: [10.0, 10.0, 10.0],
    "gain": lambda: 2.0,
    "read_noise": lambda: 5.0,
    "saturation": lambda: 60000.0,
    "data": array,
    "shape": lambda: SHAPE,
    "memory_limit": lambda: 1 << 30,
}


def _guess(param: inspect.Parameter) -> Any:
    if param.name in _BY_NAME:
        return _BY_NAME[param.name]()
    annotation = str(param.annotation)
    if annotation.replace(" ", "").endswith("|None"):
        return None
    if "CCDData" in annotation or annotation == "FrameInput":
        return make_frame(hash(param.name) % 100)
    if "Sequence" in annotation or "list" in annotation:
        return [make_frame(i) for i in range(3)]
    if "ndarray" in annotation or "NDArray" in annotation:
        return array()
    for word, value in (("float", 1.0), ("int", 1), ("bool", False), ("str", "median")):
        if word in annotation:
            return value
    raise LookupError(f"no argument factory for parameter {param.name!r}: {annotation}")


def _generic(func: Callable[..., Any]) -> Args:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.default is not inspect.Parameter.empty or param.kind in (
                param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = _guess(param)
        if param.kind == param.KEYWORD_ONLY:
            kwargs[param.name] = value
        else:
            args.append(value)
    return tuple(args), kwargs


def _public_functions() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for info in pkgutil.iter_modules(nightlog.reduction.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"nightlog.reduction.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            key = f"{info.name}.{name}"
            if inspect.isfunction(obj):
                found.append((key, obj))
    return found


FUNCTIONS = _public_functions()
# A second call of the science reduction, with a CMOS camera's inputs (two darks
# interpolated, a read-noise map, a quantisation step).
FUNCTIONS.append(("science.reduce_science#cmos",
                  dict(FUNCTIONS)["science.reduce_science"]))


def _snapshot(value: Any) -> Any:
    if isinstance(value, CCDData):
        meta = (list(value.meta.cards) if isinstance(value.meta, fits.Header)
                else dict(value.meta))
        return ("ccd", np.array(value.data, copy=True), str(value.unit),
                None if value.uncertainty is None else np.array(value.uncertainty.array),
                None if value.mask is None else np.array(value.mask),
                None if value.flags is None else np.array(value.flags), meta)
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, list | tuple):
        return ("seq", len(value), [_snapshot(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: _snapshot(v) for k, v in value.items()})
    return ("other", repr(value))


def _assert_same(before: Any, after: Any, where: str) -> None:
    assert type(before) is type(after), where
    if isinstance(before, np.ndarray):
        np.testing.assert_array_equal(after, before, err_msg=where)
        assert after.dtype == before.dtype, where
    elif isinstance(before, tuple | list):
        assert len(before) == len(after), where
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            _assert_same(b, a, f"{where}[{i}]")
    elif isinstance(before, dict):
        assert before.keys() == after.keys(), where
        for k in before:
            _assert_same(before[k], after[k], f"{where}.{k}")
    elif before is not None:
        assert before == after, where


def test_every_module_of_mine_is_discovered() -> None:
    keys = {key for key, _ in FUNCTIONS}
    assert set(EXPLICIT) <= keys


@pytest.mark.parametrize(("key", "func"), FUNCTIONS, ids=[k for k, _ in FUNCTIONS])
def test_public_step_leaves_inputs_unchanged(key: str, func: Callable[..., Any]) -> None:
    try:
        args, kwargs = EXPLICIT[key]() if key in EXPLICIT else _generic(func)
    except LookupError as err:
        pytest.skip(f"{key}: {err}; add an entry to EXPLICIT")
    before = _snapshot((args, kwargs))
    failure: BaseException | None = None
    try:
        result = func(*args, **kwargs)
        if inspect.isgenerator(result):
            result.close()
    except (NightlogError, TypeError, ValueError) as err:
        failure = err
    _assert_same(before, _snapshot((args, kwargs)), key)
    if failure is not None and key in EXPLICIT:
        raise failure
    if failure is not None:
        pytest.skip(f"{key} refused the generic arguments ({failure!r}); inputs were "
                    "unchanged, but add an entry to EXPLICIT for a real call")


# --- no file work, no store -------------------------------------------------------------

REDUCTION_DIR = Path(nightlog.reduction.__file__).parent
_FORBIDDEN_PACKAGES = ("nightlog.store", "nightlog.catalogue", "nightlog.coordinator",
                       "nightlog.settings", "sqlalchemy", "pathlib", "tempfile", "shutil")
# Calls that open, read or write a file, by dotted name, and methods that do on any object.
_FILE_CALLS = {
    "open", "io.open", "Path", "PurePath", "os.open", "os.fdopen", "os.pread", "os.preadv",
    "os.pwrite", "os.remove", "os.unlink", "os.listdir", "os.scandir", "os.stat",
    "fits.open", "fits.getdata", "fits.getheader", "fits.getval", "fits.writeto",
    "fits.append", "CCDData.read", "CCDData.write", "np.load", "np.save", "np.fromfile",
    "np.memmap", "np.loadtxt", "np.genfromtxt", "tempfile.mkstemp",
}
_FILE_METHODS = {"read_text", "read_bytes", "write_text", "write_bytes", "writeto", "unlink",
                 "tofile"}
# The one file the core touches is its own working memory: a stack too large for the
# memory limit is staged in a scratch file (created, written and read back in row
# bands, always removed) by stack.py. Its inputs come in as arrays, CCDData or loaders
# the caller gives (the store's FrameFile), never as paths.
_SCRATCH_ONLY = {"stack.py": {"imports tempfile", "imports pathlib", "calls os.pwrite",
                              "calls os.preadv", "calls tempfile.mkstemp", "calls Path",
                              "calls ?.unlink"}}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def file_work(source: str) -> list[str]:
    """What in ``source`` imports a forbidden package or opens a file (``line: what``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names = [node.module]
        for name in names:
            if name.startswith(_FORBIDDEN_PACKAGES):
                found.append(f"{node.lineno}: imports {name}")
        if isinstance(node, ast.Call):
            called = _dotted(node.func)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if called in _FILE_CALLS or method in _FILE_METHODS:
                found.append(f"{node.lineno}: calls {called}")
    return found


def test_the_file_work_finder_finds_file_work() -> None:
    source = ("import nightlog.store.products\nfrom pathlib import Path\n"
              "with open('x') as f:\n    pass\nhdus = fits.open(p)\nc = CCDData.read(p)\n"
              "p = Path('archive')\ntext = p.read_text()\nx = np.asarray(data)\n")
    assert {f.split(": ", 1)[1] for f in file_work(source)} == {
        "imports nightlog.store.products", "imports pathlib", "calls open", "calls fits.open",
        "calls CCDData.read", "calls Path", "calls p.read_text"}


_MODULES = sorted(REDUCTION_DIR.glob("*.py"))


@pytest.mark.parametrize("module", _MODULES, ids=[m.name for m in _MODULES])
def test_reduction_module_reads_no_file_and_imports_no_store(module: Path) -> None:
    found = {f.split(": ", 1)[1] for f in file_work(module.read_text(encoding="utf-8"))}
    assert found - _SCRATCH_ONLY.get(module.name, set()) == set()
