"""The catalogue's first part of a frame's reduction: the plan before the work.

A reduction runs in three phases so that workers never touch the catalogue:

1. **plan** (:func:`plan_frame`, coordinating process, caller's session): the
   calibration manager chooses the masters (or the policy says what to do without
   one), the inputs key is computed, the frame is skipped when its current product
   was made from the same inputs, and the product's path, header keywords and
   provenance rows are decided. The result is a :class:`FramePlan` whose
   :class:`~nightlog.coordinator.reduce_job.ReduceJob` is small and picklable.
2. **work** (:func:`~nightlog.coordinator.reduce_job.reduce_job`, any worker):
   files in, product file out.
3. **record** (:func:`~nightlog.coordinator.reduce_record.record_reduction`,
   coordinating process, one transaction per frame, through the catalogue's
   :mod:`~nightlog.catalogue.products`): the product row, a row per master used,
   older current products of the frame (quick-looks included) marked ``replaced``
   and pointing at the new one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, TypedDict

from astropy.io import fits
from sqlalchemy.orm import Session

from nightlog.calibration.dark_temperature import TemperatureScaling
from nightlog.calibration.detector_numbers import (
    DetectorNumber,
    detector_numbers,
    gain_of,
    read_noise_of,
    warn_if_assumed,
)
from nightlog.calibration.matching import KindMatch, match_frame
from nightlog.calibration.missing import missing_policy
from nightlog.catalogue.models import Frame, Master, Product
from nightlog.catalogue.products import current_product
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.provenance import (
    SECOND_DARK,
    parameters_digest,
    product_entries,
    set_master_cards,
)
from nightlog.coordinator.reduce_job import QualitySetup, ReduceJob, jsonable
from nightlog.coordinator.window_plan import (
    crop_section,
    cropped_entries,
    master_crops,
    window_cards,
    window_record,
)
from nightlog.header.profiles import InstrumentProfile
from nightlog.quality_rules import QualitySettings
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.dark_temperature import DarkTemperature
from nightlog.reduction.interchange import time_cards
from nightlog.reduction.science import OverscanParameters, ScienceParameters
from nightlog.states import FailureCause, MissingPolicy, ProductKind, ReduceStatus
from nightlog.store.layout import name_beside

__all__ = ["FramePlan", "MaskThresholds", "ReduceOutcome", "inputs_key", "mask_thresholds",
           "plan_frame", "science_parameters"]


@dataclass(slots=True)
class ReduceOutcome:
    """What happened to one frame.

    ``status`` is ``reduced`` (``missing`` the steps it was reduced without),
    ``up-to-date`` (skipped: same inputs), ``held`` (the profile's ``missing =
    "hold"``: waiting for the ``missing`` masters), ``stopped`` (``missing =
    "fail"``) or ``failed`` (``reason`` says why, after
    ``attempts`` tries, and ``cause`` whether the catalogue, the archive or the
    work itself failed). ``seconds``, ``cpu_seconds`` and ``peak_rss`` come from
    the worker that reduced it.
    """

    frame_id: int
    status: ReduceStatus
    reason: str = ""
    product_id: int | None = None
    missing: tuple[str, ...] = ()
    attempts: int = 0
    seconds: float = 0.0
    peak_rss: int | None = None
    worker: str = ""
    cpu_seconds: float = 0.0
    cause: FailureCause | None = None


@dataclass(frozen=True, slots=True)
class FramePlan:
    """A frame to reduce: the worker's job and what the record needs besides."""

    job: ReduceJob
    kind: str
    live: bool
    key: str
    digest: str
    science: dict[str, Any]  # the parameters without the thread count
    threads: int | None
    masters: tuple[tuple[str, int, str], ...]  # (role, master id, master sha256)
    missing: tuple[str, ...]
    raw_sha256: str
    software_version: str
    replaces: int | None = None  # the frame's current product when it was planned
    # Gain and read noise used, each with its source (DetectorNumber.as_dict).
    detector: dict[str, Any] = field(default_factory=dict)
    # A subarray frame: its window, the product's and each master's crop.
    window: dict[str, Any] = field(default_factory=dict)
    # The rules that judge the product's quality record.
    quality: QualitySettings = field(default_factory=QualitySettings)
    # Why each missing step's master is missing (the match's reason), by role.
    missing_reasons: dict[str, str] = field(default_factory=dict)


def science_parameters(frame: Frame, profile: InstrumentProfile, *, skip_columns: int,
                       cosmic_threads: int | None = None, gain: float | None = None,
                       read_noise: float | None = None, unit: str = "adu",
                       cosmic_rays: CosmicRaySettings | None = None
                       ) -> ScienceParameters:
    """The reduction settings of ``frame`` from its catalogue row and profile, its
    product written in ``unit`` (``adu`` or ``electron``), its cosmic rays found
    with ``cosmic_rays`` (``None``: the defaults; threads set to ``cosmic_threads``
    either way). ``gain`` and
    ``read_noise`` default to what :mod:`~nightlog.calibration.detector_numbers`
    decides without a master bias (profile, then header, then a stated default)."""
    overscan = None
    if profile.subtract_overscan and frame.biassec:
        overscan = OverscanParameters(region=frame.biassec,
                                      skip_columns=skip_columns,
                                      model_degree=profile.overscan_fit_degree,
                                      niterate=profile.overscan_niterate,
                                      low_reject=profile.overscan_low_reject,
                                      high_reject=profile.overscan_high_reject)
    return ScienceParameters(
        gain=gain if gain is not None else gain_of(frame, profile).value,
        read_noise=(read_noise if read_noise is not None
                    else read_noise_of(frame, profile, None).value),
        saturation=frame.saturation,
        exptime=frame.exptime,
        overscan=overscan,
        # The same region the masters were trimmed to; the whole frame when the
        # catalogue knows none (the core would otherwise read the raw header).
        trim=frame.trimsec or frame.datasec or f"[1:{frame.naxis1},1:{frame.naxis2}]",
        darks_scale=profile.darks_scale,
        **mask_thresholds(profile),
        cosmic_rays=dataclasses.replace(cosmic_rays or CosmicRaySettings(),
                                        threads=cosmic_threads),
        unit=unit,
        quantisation_step=profile.quantisation_step,
    )



class MaskThresholds(TypedDict):
    """The profile's thresholds of the masters' bits, as
    :class:`~nightlog.reduction.science_parameters.ScienceParameters` fields."""

    hot_nsigma: float
    dead_low: float
    dead_high: float | None
    low_response: float | None


def mask_thresholds(profile: InstrumentProfile) -> MaskThresholds:
    """HOT, DEAD and UNILLUMINATED thresholds of ``profile`` (the masters' bits)."""
    return MaskThresholds(hot_nsigma=profile.hot_nsigma, dead_low=profile.dead_low,
                          dead_high=profile.dead_high, low_response=profile.low_response)

_ASCII = str.maketrans({"±": "+-", "×": "x", "°": "", "⁻": "-"})


def dark_temperature_of(scaling: TemperatureScaling) -> DarkTemperature:
    """The reduction's temperature scaling of a master dark, from the match's."""
    return DarkTemperature(factor=scaling.factor, factor_err=scaling.factor_err,
                           from_c=scaling.from_c, to_c=scaling.to_c,
                           note=f"master {scaling.master_id}, "
                                f"{scaling.fit.describe().translate(_ASCII)}")
def _dark_bias_share(chosen: dict[str, Master | None]) -> tuple[float, float] | None:
    """The master dark's share of the master bias's error (``bias_share`` in its
    statistics) and the mean of its square that its uncertainty does not hold (0
    when ``bias_share_in_plane``; the share's square for an older master, made of
    darks of one exposure), when it was made with the master bias chosen for the
    frame and is not interpolated with a second; ``None`` otherwise (independent
    errors)."""
    dark, bias = chosen.get("dark"), chosen.get("bias")
    if dark is None or bias is None or chosen.get(SECOND_DARK) is not None:
        return None
    stats = dark.stats if isinstance(dark.stats, dict) else {}
    used = stats.get("masters_used") or {}
    share = stats.get("bias_share")
    if used.get("bias") != bias.id or not isinstance(share, int | float):
        return None
    return float(share), (0.0 if stats.get("bias_share_in_plane") is True
                          else float(share) ** 2)


def _described(params: ScienceParameters) -> Any:
    """The parameters as JSON, threads excluded: they change speed, not pixels."""
    return jsonable(dataclasses.replace(
        params, cosmic_rays=dataclasses.replace(params.cosmic_rays, threads=None)))


def _cosmic_rays_changed(product: Product, params: ScienceParameters) -> bool:
    """Whether ``product`` was made with other cosmic-ray settings than ``params``'
    (a product that does not record them: no)."""
    science = (product.parameters or {}).get("science") or {}
    made_with = science.get("cosmic_rays")
    return made_with is not None and made_with != _described(params)["cosmic_rays"]


def inputs_key(frame: Frame, masters: dict[str, Master | None], params: ScienceParameters,
               software_version: str, crops: dict[str, str] | None = None) -> str:
    """Digest of everything a product depends on (threads excluded: they change speed,
    not pixels); a window's master ``crops`` (FITS sections by role) among them."""
    described = _described(params)
    payload: dict[str, Any] = {
        "raw": frame.sha256,
        "masters": {k: (None if m is None else m.sha256) for k, m in sorted(masters.items())},
        "parameters": described,
        "software": software_version,
    }
    if crops:
        payload["crops"] = dict(sorted(crops.items()))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _cards(kind: str, frame: Frame, key: str, digest: str, software_version: str,
           chosen: dict[str, Master | None], missing: list[str],
           numbers: dict[str, DetectorNumber], sections: dict[str, str]
           ) -> tuple[tuple[str, Any, str], ...]:
    header = fits.Header()
    header["NLKIND"] = (kind, "nightlog product: final or quicklook")
    header["NLSOFT"] = (software_version, "nightlog version")
    header["NLRAWSHA"] = (frame.sha256, "SHA-256 of the raw file")
    header["NLINKEY"] = (key, "digest of raw, masters and parameters")
    header["NLPARSHA"] = (digest, "SHA-256 of the reduction parameters")
    set_master_cards(header, chosen)
    end = frame.obs_time + dt.timedelta(seconds=frame.exptime or 0.0)
    for keyword, value, comment in time_cards(frame.obs_time, end):
        header[keyword] = (value, comment)
    if missing:
        header["NLMISS"] = (",".join(missing), "calibration steps skipped: no master")
    header["NLGAIN"] = (numbers["gain"].value, "e-/ADU used")
    header["NLGAINSR"] = (numbers["gain"].source[:68], "source of NLGAIN")
    header["NLRDNOIS"] = (numbers["read_noise"].value, "e- read noise used")
    header["NLRDNSRC"] = (numbers["read_noise"].source[:68], "source of NLRDNOIS")
    for keyword, value, comment in window_cards(frame, sections):
        header[keyword] = (value, comment)
    return tuple((card.keyword, card.value, card.comment) for card in header.cards)


def plan_frame(session: Session, frame: Frame, ctx: JobContext, *,
               kind: str = ProductKind.FINAL,
               live: bool = False, force: bool = False, redo_superseded: bool = True,
               cosmic_threads: int | None = None, illumination: bool = True
               ) -> FramePlan | ReduceOutcome:
    """Decide what reducing ``frame`` takes, in the caller's session (nothing written).

    ``illumination`` false leaves out the night-sky illumination model (the
    frames that make one are reduced without it).

    Returns
    -------
    FramePlan or ReduceOutcome
        The plan, or the outcome when there is nothing to reduce: ``up-to-date``
        (its current final product has the same inputs key, or any inputs key
        without ``redo_superseded`` but the same cosmic-ray settings, and its file
        exists; ``force`` redoes it anyway), ``held`` or ``stopped`` (the profile's
        ``missing`` policy waits, or refuses to go on, without a master).
    """
    profile = ctx.profile_of(frame)
    matches: dict[str, KindMatch] = match_frame(session, frame, profile, ctx.policy, live=live,
                                                illumination=illumination)
    chosen: dict[str, Master | None] = {}
    missing: list[str] = []
    reasons: dict[str, str] = {}
    by_policy: dict[MissingPolicy, list[str]] = {p: [] for p in MissingPolicy}
    for role, match in matches.items():
        chosen[role] = match.chosen
        if match.second is not None:
            chosen[SECOND_DARK] = match.second
        if match.chosen is None:
            rule = missing_policy(profile, ctx.policy, role)
            if rule is MissingPolicy.HOLD and kind != ProductKind.FINAL:
                rule = MissingPolicy.REDUCE_WITHOUT  # a quick-look never waits
            by_policy[rule].append(role)
            reasons[role] = match.reason
    for rule, status in ((MissingPolicy.FAIL, ReduceStatus.STOPPED),
                         (MissingPolicy.HOLD, ReduceStatus.HELD)):
        if by_policy[rule]:
            roles = by_policy[rule]
            return ReduceOutcome(frame.id, status, missing=tuple(roles),
                                 reason="; ".join(f"{r}: {reasons[r]}" for r in roles))
    missing = by_policy[MissingPolicy.REDUCE_WITHOUT]
    numbers = detector_numbers(frame, profile, chosen.get("bias"), chosen.get("flat"))
    warn_if_assumed(numbers, profile.name)
    params = science_parameters(frame, profile, skip_columns=ctx.skip_columns_of(frame),
                                cosmic_threads=cosmic_threads, gain=numbers["gain"].value,
                                read_noise=numbers["read_noise"].value, unit=ctx.output_unit,
                                cosmic_rays=ctx.cosmic_rays.for_profile(profile.name))
    if kind == ProductKind.QUICKLOOK:
        # The quick-look is a look, not the product: bias, dark and flat applied, no
        # cosmic-ray detection (the frame's largest cost); the product says so
        # (CALSKIP) and the morning's final product detects them.
        params = dataclasses.replace(params, cosmic_rays=dataclasses.replace(
            params.cosmic_rays, enabled=False))
    scaling = matches["dark"].temperature if "dark" in matches else None
    if scaling is not None:
        params = dataclasses.replace(params, dark_temperature=dark_temperature_of(scaling))
    share = _dark_bias_share(chosen)
    if share is not None:
        params = dataclasses.replace(params, dark_bias_share=share[0],
                                     dark_bias_share_sq=share[1])
    crops = master_crops(frame, chosen, profile)
    sections = {role: crop_section(crop) for role, crop in crops.items()}
    key = inputs_key(frame, chosen, params, ctx.software_version, sections)
    existing = current_product(session, frame)
    # A product whose file is gone (deleted by hand, or recorded by a commit whose
    # answer was lost after the file was given up) is made again, and replaced.
    # New cosmic-ray settings are the site's deliberate choice: redone without
    # ``redo_superseded`` (which is about better masters appearing).
    if (existing is not None and not force and existing.kind == ProductKind.FINAL
            and (existing.inputs_key == key
                 or (not redo_superseded and not _cosmic_rays_changed(existing, params)))
            and os.path.exists(existing.path)):
        return ReduceOutcome(frame.id, ReduceStatus.UP_TO_DATE, product_id=existing.id)

    digest = parameters_digest(_described(params))
    path = ctx.layout.product_path(instrument=frame.instrument, night=frame.night,
                                   raw_name=os.path.basename(frame.path), product_kind=kind,
                                   product_key=key, ccd=frame.ccd)
    if path.exists() or (existing is not None and existing.path == str(path)):
        # Same inputs already written (a product row was lost: keep that file), or
        # the product this one replaces names the path (its file is gone): a new name.
        path = name_beside(path)
    used = {role: m for role, m in chosen.items() if m is not None}
    site = profile.site or ctx.site
    quality = QualitySetup(
        profile=profile.name, pixel_scale_arcsec=profile.pixel_scale_arcsec,
        gain_known=not numbers["gain"].source.startswith("default"),
        latitude_deg=site.latitude_deg, longitude_deg=site.longitude_deg,
        mid_time=frame.obs_time + dt.timedelta(seconds=(frame.exptime or 0.0) / 2.0))
    job = ReduceJob(
        frame_id=frame.id, raw_path=frame.path, hdu=frame.hdu, raw_sha256=frame.sha256,
        masters=tuple((role, m.path) for role, m in used.items()), params=params,
        target=str(path),
        cards=_cards(kind, frame, key, digest, ctx.software_version, chosen, missing,
                     numbers, sections),
        provenance=tuple(cropped_entries(product_entries(frame, chosen), sections)),
        mode=ctx.layout.file_mode(),
        crops=tuple(crops.items()),
        amplifiers=frame.amplifiers,
        quality=quality,
    )
    return FramePlan(job=job, kind=kind, live=live, key=key, digest=digest,
                     science=_described(params), threads=params.cosmic_rays.threads,
                     masters=tuple((role, m.id, m.sha256) for role, m in used.items()),
                     missing=tuple(missing), raw_sha256=frame.sha256,
                     software_version=ctx.software_version,
                     replaces=None if existing is None else existing.id,
                     detector={k: v.as_dict() for k, v in numbers.items()},
                     window=window_record(frame, sections),
                     missing_reasons={r: reasons[r] for r in missing},
                     quality=ctx.quality)
