"""Multi-amplifier test files written with astropy and numpy alone, after the LCO
Sinistro's layout (shared/reference/mef_cmos_headers.md, section 1a): an empty
primary HDU and four amplifier extensions, one per quadrant, raw pixel (1,1) at the
CCD's outer corner (DETSEC reversed in x for amplifier 2, in both for 3, in y for
4), amplifiers 3 and 4 with their data one row up (DATASEC '[1:N,2:N+1]'), the
overscan columns after the data, each amplifier with its own bias level, gain and
read noise, and a bias level drifting along the rows (seen in the overscan).

The truth is an image in electrons over the whole detector; each amplifier's
pixels are that image divided by its gain plus its bias, with its read noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

N = 64  # data pixels per amplifier side
OVERSCAN = 16
GAINS = (1.8, 2.1, 1.95, 2.3)
READ_NOISE = (7.5, 8.0, 7.7, 8.3)
BIAS = (1000.0, 1100.0, 950.0, 1050.0)
SATURATION = 60000.0
PROFILE_TOML = """
[instruments.sinistro]
match = { INSTRUME = "fa99" }
type_keywords = ["OBSTYPE"]
amplifiers = "all"
"""


@dataclass(frozen=True)
class Camera:
    """A Sinistro-like camera; ``n`` data pixels per amplifier side."""

    n: int = N
    gains: tuple[float, ...] = GAINS
    read_noise: tuple[float, ...] = READ_NOISE
    bias: tuple[float, ...] = BIAS
    drift: float = 4.0  # ADU amplitude of the bias level's drift along the rows
    flat: np.ndarray | None = field(default=None, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (2 * self.n, 2 * self.n)

    def detsec(self, i: int) -> str:
        n = self.n
        return [f"[1:{n},1:{n}]", f"[{2 * n}:{n + 1},1:{n}]",
                f"[{2 * n}:{n + 1},{2 * n}:{n + 1}]", f"[1:{n},{2 * n}:{n + 1}]"][i]

    def datasec(self, i: int) -> str:
        n = self.n
        return f"[1:{n},1:{n}]" if i < 2 else f"[1:{n},2:{n + 1}]"

    def biassec(self) -> str:
        return f"[{self.n + 1}:{self.n + OVERSCAN},1:{self.n + 1}]"

    def quadrant(self, truth: np.ndarray, i: int) -> np.ndarray:
        """The truth's pixels of amplifier ``i`` as it reads them out (its own corner first)."""
        n = self.n
        ys = slice(0, n) if i in (0, 1) else slice(n, 2 * n)
        xs = slice(0, n) if i in (0, 3) else slice(n, 2 * n)
        block = truth[ys, xs]
        if i in (1, 2):
            block = block[:, ::-1]
        if i in (2, 3):
            block = block[::-1, :]
        return block


def write_mef(path: Path, camera: Camera, truth_e: np.ndarray, rng: np.random.Generator, *,
              kind: str, exptime: float, filt: str = "rp", date: str = "2026-11-30T03:00:00",
              poisson: bool = True, skip: int | None = None, extra: bool = False,
              bad_shape: int | None = None) -> Path:
    """One raw frame of ``truth_e`` (electrons, detector shape); ``skip`` leaves an
    amplifier out, ``extra`` adds a fifth extension, ``bad_shape`` gives one amplifier
    one column fewer."""
    n = camera.n
    primary = fits.PrimaryHDU()
    primary.header.update({"INSTRUME": "fa99", "OBSTYPE": kind, "EXPTIME": exptime,
                           "DATE-OBS": date, "FILTER": filt, "CCDSUM": "1 1",
                           "SITEID": "test"})
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [primary]
    rows = np.arange(n + 1, dtype=np.float64)
    for i in range(4):
        if i == skip:
            continue
        electrons = camera.quadrant(truth_e, i)
        if poisson:
            electrons = rng.poisson(np.clip(electrons, 0, None)).astype(np.float64)
        raw = np.zeros((n + 1, n + OVERSCAN), dtype=np.float64)
        data_rows = slice(0, n) if i < 2 else slice(1, n + 1)
        raw[data_rows, :n] = electrons / camera.gains[i]
        drift = camera.drift * np.sin(rows / 9.0 + i)
        raw += camera.bias[i] + drift[:, None]
        raw += rng.normal(0.0, camera.read_noise[i] / camera.gains[i], raw.shape)
        if bad_shape == i:
            raw = raw[:, :-1]
        values = np.clip(np.round(raw), 0, 65535).astype(np.uint16)
        ext = fits.ImageHDU(values, name=f"AMP{i + 1}")
        ext.header.update({"DATASEC": camera.datasec(i), "BIASSEC": camera.biassec(),
                           "DETSEC": camera.detsec(i), "CCDSUM": "1 1",
                           "GAIN": camera.gains[i], "RDNOISE": camera.read_noise[i],
                           "SATURATE": SATURATION})
        hdus.append(ext)
    if extra:
        hdus.append(fits.ImageHDU(np.zeros((n + 1, n + OVERSCAN), np.uint16), name="AMP5"))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def flat_pattern(camera: Camera, seed: int = 9) -> np.ndarray:
    """A pixel-response pattern (mean 1, 1 % rms) with a gentle large-scale slope."""
    rng = np.random.default_rng(seed)
    ny, nx = camera.shape
    xx = np.mgrid[0:ny, 0:nx][1]
    return (1.0 + 0.01 * rng.standard_normal((ny, nx))) * (1.0 + 0.05 * (xx / nx - 0.5))


def write_mosaic(path: Path, camera: Camera, rng: np.random.Generator) -> Path:
    """Two CCDs side by side in one file, each four amplifiers (``CCDNAME`` CCD1, CCD2),
    the second's DETSEC shifted by one CCD width."""
    width = 2 * camera.n
    single = path.with_suffix(".one.fits")
    write_mef(single, camera, np.full(camera.shape, 300.0), rng, kind="OBJECT", exptime=10.0)
    with fits.open(single) as hdul:
        primary = hdul[0].copy()
        amps = [h.copy() for h in hdul[1:]]
    single.unlink()
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [primary]
    for c, name in enumerate(("CCD1", "CCD2")):
        for amp in amps:
            ext = amp.copy()
            x1, x2, y1, y2 = (int(v) for v in
                              ext.header["DETSEC"].strip("[]").replace(",", ":").split(":"))
            ext.header["DETSEC"] = f"[{x1 + c * width}:{x2 + c * width},{y1}:{y2}]"
            ext.header["CCDNAME"] = name
            ext.header["EXTNAME"] = f"{name}{ext.header['EXTNAME']}"
            hdus.append(ext)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path
