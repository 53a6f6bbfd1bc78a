"""How the frames of a master are combined, given what is known of the detector.

:class:`CombineOptions` holds the combination; the functions here take options in
and give new options (or their description) out.

The default rejection is a median-centred clip with a robust (MAD) spread:
calibration stacks are often small, and with five frames a 3-sigma clip on the
standard deviation can never reject a single outlier (see
:class:`~nightlog.reduction.rejection.ClipSpec`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

from nightlog.reduction.combine import DEFAULT_MEMORY_LIMIT
from nightlog.reduction.rejection import ClipSpec, Method

__all__ = ["CombineOptions", "configured_options", "describe_combine", "noise_model_options"]


# One pass: iterating a MAD on the four or so values left in a small stack keeps
# cutting good values (about 9% of them for five frames, against 7% in one pass).
_ROBUST_CLIP = ClipSpec(low=3.0, high=3.0, spread="mad", centre="median", max_iters=1)


@dataclass(frozen=True)
class CombineOptions:
    """How the frames of a master are combined
    (see :func:`~nightlog.reduction.combine.combine`)."""

    method: Method = "average"
    clip: ClipSpec | None = _ROBUST_CLIP
    nlow: int = 0
    nhigh: int = 0
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    scratch_dir: str | os.PathLike[str] | None = None
    threads: int = 1


#: A bias's clip, in sigma. Its outliers (cosmic rays, telegraph jumps) lie tens of
#: sigma out; a 3-sigma clip also rejects 0.27 % of good values, each moving its
#: pixel's mean by about 3σ/(n - 1): the master bias of a simulated LFC night came
#: out 5 % noisier than read noise / √N. Beyond 5 sigma lie 6e-7 of good values,
#: one in a five-frame stack of 300 000 pixels.
_BIAS_CLIP = 5.0


def describe_combine(options: CombineOptions) -> str:
    """How frames were combined, in words (kept with the master's parameters)."""
    clip = options.clip
    if clip is None:
        return options.method
    spread = {"mad": "MAD", "std": "standard deviation",
              "sigclip": "sigclip (the survivors' sigma, n - 1)",
              "avsigclip": "avsigclip (sigma = k sqrt(level), k per line)"}.get(clip.spread) or (
        f"noise model (read noise {clip.read_noise} e-, gain {clip.gain} e-/ADU)"
        if clip.light else
        f"noise model of a bias (read noise "
        f"{(clip.read_noise or 0.0) / (clip.gain or 1.0):.4g} ADU)")
    low = "-" if clip.low is None else f"{clip.low:g}"
    high = "-" if clip.high is None else f"{clip.high:g}"
    passes = ("passes until nothing more is rejected" if clip.max_iters is None
              else f"{clip.max_iters} pass(es)")
    text = (f"{options.method}, {low}/{high}-sigma clip about the "
            f"{clip.centre} by {spread}, {passes}")
    if clip.frame_scales:
        text += ", in each frame's own units"
    if clip.nkeep is not None:
        text += f", nkeep {clip.nkeep}"
    return text


def noise_model_options(options: CombineOptions, gains: Sequence[float | None],
                        read_noises: Sequence[float | None], *, light: bool = True,
                        read_noise_adu: float | None = None) -> CombineOptions:
    """Clip biases and flats against the detector's noise model (IRAF ``ccdclip``)
    when every frame knows its gain (e⁻/ADU) and read noise (e⁻), one value each,
    else keep the robust MAD clip of ``options``.

    Biases (``light=False``) collected no light: their sigma is the read noise
    alone (ADU), never a Poisson term of the amplifier's offset. When their
    frames give no read noise, ``read_noise_adu`` (measured on a pair of them)
    is that sigma.

    With five frames a MAD measured from the stack itself is so uncertain, and so
    pulled by frame-to-frame bias offsets, that the clip rejects good values: on a
    simulated LFC night the master bias's noise came out 14% above read noise /
    sqrt(N), against 0.1% with the noise model (tests/test_recovery.py). Flats are
    scaled before combining, which the noise model takes into account; darks are
    combined as rates, in which it does not hold, and keep the MAD clip.
    """
    distinct_gains, distinct_noises = set(gains), set(read_noises)
    given = len(distinct_gains) == 1 and len(distinct_noises) == 1
    gain, read_noise = (distinct_gains.pop(), distinct_noises.pop()) if given else (None, None)
    if not gain or gain <= 0 or read_noise is None or read_noise <= 0:
        if light or read_noise_adu is None or not read_noise_adu > 0:
            return options
        gain, read_noise = 1.0, float(read_noise_adu)  # sigma in ADU: the gain cancels
    k = 3.0 if light else _BIAS_CLIP
    return dataclasses.replace(options, clip=ClipSpec(
        low=k, high=k, centre="median", spread="noise", read_noise=read_noise,
        gain=gain, max_iters=1, light=light))


def configured_options(options: CombineOptions, *, kind: str, reject: str, centre: str,
                       lsigma: float, hsigma: float, max_iters: int | None,
                       nkeep: int | None, frame_scales: bool,
                       gains: Sequence[float | None], read_noises: Sequence[float | None],
                       read_noise_adu: float | None = None
                       ) -> tuple[CombineOptions, str | None]:
    """The options of a master of ``kind`` as a site's ``[combine]`` asks, and why
    the clip asked for could not be used (``None`` when it was).

    ``reject='auto'`` is :func:`noise_model_options` for biases and flats (the MAD
    clip of ``options`` otherwise); ``'none'``, ``'mad'``, ``'sigclip'``,
    ``'avsigclip'`` and ``'ccdclip'`` are IRAF's, with ``centre``, ``lsigma``,
    ``hsigma`` and ``max_iters``. ``'ccdclip'`` needs one gain and one read noise
    for all frames; without them the MAD clip is kept and the reason returned.
    ``nkeep`` applies to whichever clip results, ``frame_scales`` to the noise
    model, ``sigclip`` and ``avsigclip``. A bias's noise model is its read noise
    alone, ``read_noise_adu`` (measured on a pair of the biases) when the frames
    give none.
    """
    note = None
    light = kind != "bias"
    if reject == "auto":
        out = (noise_model_options(options, gains, read_noises, light=light,
                                   read_noise_adu=read_noise_adu)
               if kind in ("bias", "flat") else options)
    elif reject == "none":
        return dataclasses.replace(options, clip=None), None
    elif reject == "ccdclip":
        out = noise_model_options(options, gains, read_noises, light=light,
                                  read_noise_adu=read_noise_adu)
        if out.clip is None or out.clip.spread != "noise":
            note = ("ccdclip asked for, but the frames do not all give one gain and one "
                    "read noise: the MAD clip was used")
        else:
            out = dataclasses.replace(out, clip=dataclasses.replace(
                out.clip, low=lsigma, high=hsigma, centre=centre,  # type: ignore[arg-type]
                max_iters=max_iters))
    else:
        spread = {"mad": "mad", "sigclip": "sigclip", "avsigclip": "avsigclip"}[reject]
        out = dataclasses.replace(options, clip=ClipSpec(
            low=lsigma, high=hsigma, spread=spread, centre=centre,  # type: ignore[arg-type]
            max_iters=max_iters))
    clip = out.clip
    if clip is not None and (nkeep is not None or frame_scales):
        clip = dataclasses.replace(
            clip, nkeep=nkeep,
            frame_scales=frame_scales and clip.spread in ("noise", "avsigclip", "sigclip"))
        out = dataclasses.replace(out, clip=clip)
    return out, note
