"""Amplifiers into one detector image: the layout from headers, the assembly against
hand-written numpy, no steps at the amplifier boundaries, crosstalk, nonlinearity,
binning, mosaics, and the profile keys that describe them."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.nddata import CCDData

from nightlog.errors import AmplifierError, ProfileError
from nightlog.header.amplifier_layout import amplifier_layout
from nightlog.header.amplifiers import AmplifierLayout, ExtensionHeader
from nightlog.header.profiles.tables import profile_from_table
from nightlog.reduction.amplifiers import assemble_amplifiers
from tests.mef_files import BIAS, GAINS, OVERSCAN, READ_NOISE, Camera

N = 32


def _extensions(camera: Camera, truth: np.ndarray, rng: np.random.Generator | None,
                crosstalk: np.ndarray | None = None
                ) -> tuple[list[ExtensionHeader], list[np.ndarray]]:
    """Raw amplifier arrays of ``truth`` (e-) in the Sinistro layout, and their headers."""
    n = camera.n
    rows = np.arange(n + 1)[:, None]
    signals, arrays, headers = [], [], []
    for i in range(4):
        adu = np.zeros((n + 1, n + OVERSCAN))
        adu[(slice(0, n) if i < 2 else slice(1, n + 1)), :n] = (
            camera.quadrant(truth, i) / camera.gains[i])
        signals.append(adu)
    for i in range(4):
        raw = signals[i].copy()
        if crosstalk is not None:
            raw += sum(crosstalk[k, i] * signals[k] for k in range(4) if k != i)
        raw += camera.bias[i] + camera.drift * np.sin(rows / 5.0 + i)
        if rng is not None:
            raw += rng.normal(0.0, camera.read_noise[i] / camera.gains[i], raw.shape)
        arrays.append(raw.astype(np.float32))
        headers.append(ExtensionHeader(i + 1, {
            "EXTNAME": f"AMP{i + 1}", "DATASEC": camera.datasec(i),
            "BIASSEC": camera.biassec(), "DETSEC": camera.detsec(i),
            "GAIN": camera.gains[i], "RDNOISE": camera.read_noise[i]}, raw.shape))
    return headers, arrays


def _by_hand(camera: Camera, arrays: list[np.ndarray]) -> np.ndarray:
    """The assembly written out for the Sinistro layout: per-row median overscan,
    trim, times the gain, flip, place."""
    n = camera.n
    out = np.zeros(camera.shape)
    for i, raw in enumerate(arrays):
        levels = np.median(raw[:, n:n + OVERSCAN], axis=1)
        data = (raw - levels[:, None])[(slice(0, n) if i < 2 else slice(1, n + 1)), :n]
        data = data * camera.gains[i]
        if i in (1, 2):
            data = data[:, ::-1]
        if i in (2, 3):
            data = data[::-1, :]
        ys = slice(0, n) if i < 2 else slice(n, 2 * n)
        xs = slice(0, n) if i in (0, 3) else slice(n, 2 * n)
        out[ys, xs] = data
    return out


def test_the_assembly_is_the_hand_written_numpy() -> None:
    camera = Camera(n=N)
    truth = np.random.default_rng(1).uniform(100.0, 5000.0, camera.shape)
    headers, arrays = _extensions(camera, truth, np.random.default_rng(2))
    layout = amplifier_layout({}, headers, None)
    before = [a.copy() for a in arrays]
    ccd = assemble_amplifiers([CCDData(a, unit="adu") for a in arrays], layout)
    assert ccd.unit == "electron" and ccd.shape == camera.shape
    np.testing.assert_allclose(ccd.data, _by_hand(camera, arrays), rtol=1e-5, atol=1e-2)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)  # inputs untouched
    # Each pixel's uncertainty is its amplifier's read noise.
    n = camera.n
    assert ccd.uncertainty.array[0, 0] == READ_NOISE[0]
    assert ccd.uncertainty.array[0, -1] == READ_NOISE[1]
    assert ccd.uncertainty.array[-1, -1] == READ_NOISE[2]
    assert ccd.uncertainty.array[n, 0] == READ_NOISE[3]
    for i in range(4):
        assert ccd.header[f"GAIN_A{i + 1}"] == GAINS[i]
        assert ccd.header[f"OVSC_A{i + 1}"] == pytest.approx(BIAS[i], abs=2.0)


def test_without_noise_the_truth_comes_back_exactly_placed() -> None:
    """A gradient and a marked corner pixel: the reversed DETSEC of amplifiers 2-4 are
    honoured (every pixel lands where the detector has it)."""
    camera = Camera(n=N, drift=0.0)
    yy, xx = np.mgrid[0:2 * N, 0:2 * N]
    truth = 100.0 + 3.0 * xx + 7.0 * yy
    headers, arrays = _extensions(camera, truth, None)
    ccd = assemble_amplifiers(arrays, amplifier_layout({}, headers, None))
    np.testing.assert_allclose(ccd.data, truth, atol=0.05)


def _step(image: np.ndarray, axis: int, at: int, half: slice, width: int = 3) -> float:
    """Difference of the means of the strips of ``width`` either side of ``at``."""
    if axis == 1:  # between columns at-1 and at
        return float(image[half, at:at + width].mean() - image[half, at - width:at].mean())
    return float(image[at:at + width, half].mean() - image[at - width:at, half].mean())


def _steps(image: np.ndarray, n: int, width: int = 3) -> list[float]:
    """Each amplifier boundary's step in units of its noise: the scatter of the same
    statistic at positions inside the amplifiers (which also holds the noise the
    per-row overscan levels share along a row)."""
    out = []
    for axis in (0, 1):
        for half in (slice(0, n), slice(n, 2 * n)):
            inside = [_step(image, axis, k, half, width)
                      for k in (*range(2 * width, n - 2 * width, width),
                                *range(n + 2 * width, 2 * n - 2 * width, width))]
            out.append(_step(image, axis, n, half, width) / float(np.std(inside)))
    return out


def test_gain_differences_leave_no_step_at_the_amplifier_boundaries() -> None:
    camera = Camera(n=128)
    rng = np.random.default_rng(3)
    sky = rng.poisson(np.full(camera.shape, 3000.0)).astype(float)
    headers, arrays = _extensions(camera, sky, rng)
    ccd = assemble_amplifiers(arrays, amplifier_layout({}, headers, None))
    steps = _steps(ccd.data, camera.n)
    assert len(steps) == 4 and max(abs(s) for s in steps) <= 2.0
    # Without the gains (all amplifiers as 1 e-/ADU) the steps are plain to see.
    flat_gain = [ExtensionHeader(h.index, {**h.values, "GAIN": 1.0}, h.shape) for h in headers]
    raw = assemble_amplifiers(arrays, amplifier_layout({}, flat_gain, None))
    assert max(abs(s) for s in _steps(raw.data, camera.n)) > 20.0


def test_crosstalk_is_removed_before_the_assembly() -> None:
    camera = Camera(n=N, drift=0.0)
    truth = np.full(camera.shape, 200.0)
    truth[5, 5] = 40000.0  # a bright star on amplifier 1
    matrix = np.zeros((4, 4))
    matrix[0, 1], matrix[0, 2], matrix[0, 3] = 0.002, 0.001, 0.0005
    headers, arrays = _extensions(camera, truth, None, crosstalk=matrix)
    plain = assemble_amplifiers(arrays, amplifier_layout({}, headers, None))
    # The ghost in amplifier 2 sits at the same readout pixel, mirrored in x.
    ghost = (5, 2 * N - 1 - 5)
    assert plain.data[ghost] - 200.0 > 50.0
    xt = tuple(tuple(r) for r in matrix)
    fixed = assemble_amplifiers(arrays, amplifier_layout({}, headers, None, crosstalk=xt))
    np.testing.assert_allclose(fixed.data, truth, atol=0.5)
    assert "Crosstalk" in str(fixed.header["HISTORY"])


def test_nonlinearity_and_saturation_are_per_amplifier() -> None:
    camera = Camera(n=N, drift=0.0)
    truth = np.full(camera.shape, 2000.0)
    headers, arrays = _extensions(camera, truth, None)
    headers[0] = ExtensionHeader(1, {**headers[0].values, "SATURATE": 1100.0}, headers[0].shape)
    specs = None
    layout = amplifier_layout({}, headers, specs)
    amp = layout.amplifiers[1]
    layout = AmplifierLayout(
        amplifiers=(layout.amplifiers[0],
                    type(amp)(**{**{f: getattr(amp, f) for f in amp.__slots__},
                                 "nonlinearity": (0.0, 1.0, 1e-5)}),
                    *layout.amplifiers[2:]),
        raw_shape=layout.raw_shape, shape=layout.shape)
    ccd = assemble_amplifiers(arrays, layout)
    # Amplifier 1 reads 1000 + 2000/1.8 ADU, above its 1100: saturated.
    assert ccd.mask[:N, :N].all() and not ccd.mask[:N, N:].any()
    x = 2000.0 / GAINS[1]
    assert np.median(ccd.data[:N, N:]) == pytest.approx((x + 1e-5 * x * x) * GAINS[1], rel=1e-4)


def test_binned_sections_place_by_the_unbinned_detsec() -> None:
    """BANZAI's central-2k 2x2 fixture: DATASEC binned, DETSEC unbinned."""
    detsecs = ["[1025:2048,3072:2049]", "[1025:2048,1025:2048]", "[3072:2049,1025:2048]",
               "[3072:2049,3072:2049]"]
    headers = [ExtensionHeader(i + 1, {"DATASEC": "[1:512,1:512]", "BIASSEC": "[513:544,1:512]",
                                       "DETSEC": d, "GAIN": 2.0, "RDNOISE": 7.0}, (512, 544))
               for i, d in enumerate(detsecs)]
    layout = amplifier_layout({}, headers, None, binning=(2, 2))
    assert layout.shape == (1024, 1024)
    assert [(a.rows, a.cols) for a in layout.amplifiers] == [
        ((512, 1024), (0, 512)), ((0, 512), (0, 512)), ((0, 512), (512, 1024)),
        ((512, 1024), (512, 1024))]
    assert [(a.flip_y, a.flip_x) for a in layout.amplifiers] == [
        (True, False), (False, False), (False, True), (True, True)]


def test_a_mosaic_assembles_one_image_per_ccd() -> None:
    camera = Camera(n=N, drift=0.0)
    truth = np.random.default_rng(5).uniform(100.0, 900.0, (2 * N, 4 * N))
    headers: list[ExtensionHeader] = []
    arrays: list[np.ndarray] = []
    for c, name in enumerate(("CCD1", "CCD2")):
        part, amps = _extensions(camera, truth[:, c * 2 * N:(c + 1) * 2 * N], None)
        for h, a in zip(part, amps, strict=True):
            x1, x2, y1, y2 = (int(v) for v in
                              h.values["DETSEC"].strip("[]").replace(",", ":").split(":"))
            detsec = f"[{x1 + c * 2 * N}:{x2 + c * 2 * N},{y1}:{y2}]"
            headers.append(ExtensionHeader(len(headers) + 1, {**h.values, "DETSEC": detsec,
                                                              "CCDNAME": name}, h.shape))
            arrays.append(a)
    layout = amplifier_layout({}, headers, None, ccd_keyword="CCDNAME")
    assert layout.ccd_names == ("CCD1", "CCD2") and layout.shape == camera.shape
    for c, name in enumerate(layout.ccd_names):
        ccd = assemble_amplifiers(arrays, layout, ccd=name)
        np.testing.assert_allclose(ccd.data, truth[:, c * 2 * N:(c + 1) * 2 * N], atol=0.05)
        assert ccd.header["CCDNAME"] == name and ccd.header["NAMPS"] == 4
    with pytest.raises(Exception, match="name the ccd"):
        assemble_amplifiers(arrays, layout)


def test_the_layout_survives_its_json_form() -> None:
    camera = Camera(n=N)
    headers, _ = _extensions(camera, np.zeros(camera.shape), None)
    layout = amplifier_layout({}, headers, None, crosstalk=((0.0,) * 4,) * 4)
    assert AmplifierLayout.from_json(layout.as_json()) == layout


def test_a_detsec_that_does_not_hold_its_datasec_is_refused() -> None:
    camera = Camera(n=N)
    headers, _ = _extensions(camera, np.zeros(camera.shape), None)
    headers[1] = ExtensionHeader(2, {**headers[1].values, "DETSEC": f"[{2 * N}:{N + 2},1:{N}]"},
                                 headers[1].shape)
    with pytest.raises(AmplifierError, match="does not hold DATASEC"):
        amplifier_layout({}, headers, None)


def test_profile_amplifier_keys() -> None:
    profile = profile_from_table("cam", {
        "amplifiers": [{"hdu": "AMP1", "gain": 1.9, "read_noise": "measured",
                        "nonlinearity": [0, 1, 1e-6]},
                       {"hdu": 2, "datasec": "[1:64,1:64]", "gain": "EGAIN"}],
        "crosstalk": [[0, 0.001], [0.001, 0]], "ccd": "CCDNAME"})
    assert profile.multi_amplifier and profile.ccd == "CCDNAME"
    first, second = profile.amplifier_specs or ()
    assert (first.hdu, first.gain, first.read_noise) == ("AMP1", 1.9, "measured")
    assert first.nonlinearity == (0.0, 1.0, 1e-6)
    assert (second.hdu, second.datasec, second.gain) == (2, "[1:64,1:64]", "EGAIN")
    auto = profile_from_table("auto", {"amplifiers": "all"})
    assert auto.multi_amplifier and auto.amplifier_specs is None
    for table, message in [
            ({"amplifiers": [{"hdu": "A", "gian": 2}]}, "gian"),
            ({"amplifiers": [{"gain": 2}]}, "hdu"),
            ({"amplifiers": [{"hdu": "A"}, {"hdu": "A"}]}, "same hdu"),
            ({"amplifiers": [{"hdu": "A", "saturation": "measured"}]}, "only a gain"),
            ({"amplifiers": [{"hdu": "A"}], "crosstalk": [[0, 1], [1, 0]]}, "2 rows for 1"),
            ({"crosstalk": [[0.0]]}, "needs the amplifiers"),
            ({"amplifiers": "some"}, "expected \"all\"")]:
        with pytest.raises(ProfileError, match=message):
            profile_from_table("bad", table)


def test_extensions_sharing_an_extname_are_named_by_their_extver() -> None:
    """BANZAI's four ``SCI`` extensions: each amplifier is named ``SCI,<EXTVER>`` (the
    form a profile's ``hdu`` takes), so cards and messages tell them apart; a unique
    EXTNAME stays the name."""
    camera = Camera(n=8)
    headers, _ = _extensions(camera, np.ones(camera.shape), None)
    sci = [ExtensionHeader(h.index, {**h.values, "EXTNAME": "SCI", "EXTVER": h.index},
                           h.shape) for h in headers]
    assert [a.name for a in amplifier_layout({}, sci, None).amplifiers] == [
        "SCI,1", "SCI,2", "SCI,3", "SCI,4"]
    assert [a.name for a in amplifier_layout({}, headers, None).amplifiers] == [
        "AMP1", "AMP2", "AMP3", "AMP4"]
