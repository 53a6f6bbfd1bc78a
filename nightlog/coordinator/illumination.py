"""Night-sky illumination models: planned, built on the workers, recorded.

For a profile with ``illumination = "night-sky"``, the science frames of one night,
set-up and filter (the flat's grouping) make one illumination model, a master of
kind ``illumination`` (:mod:`~nightlog.calibration.illumination_match`):

1. **plan** (coordinating process): the group's frames, each planned as its
   reduction would be without the model (:func:`~nightlog.coordinator.reduce_plan.
   plan_frame`), so that the model is made of exactly the pixels it will correct;
   frames divided by another flat than the group's commonest, or that the policy
   refuses to reduce, are left out with their reason. Fewer frames than the
   profile's ``illumination_min_frames``: no model, and a ``skipped`` outcome that
   says why (each product of the group then records the missing step and its
   reason). A model whose inputs (the frames' inputs keys, the settings, the
   software) are those of the group's newest one is up to date.
2. **work** (:func:`~nightlog.coordinator.illumination_job.build_illumination_job`,
   any worker): reduce, model, write.
3. **record** (one transaction): the master, a row per frame considered (used or
   left out, with the reason), the group's previous version superseded.

Why a master of its own kind and not a variant of the flat: it is made of other
frames (the night's science, not the twilight flats), of another night's scope
(one night only), and depends on the flat it corrects; as a master it has its own
inputs, version and checksum, each product names it in its ``PROVENANCE`` table,
its ``NLILLUM``/``NLILLSHA`` cards and ``product_masters`` (role
``illumination``), and ``nightlog match`` shows its rules beside the flat's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import group_of
from nightlog.calibration.illumination_match import ILLUMINATION_KIND
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.masters import MasterInputRecord, NewMaster, add_master, latest_version
from nightlog.catalogue.models import Frame, Master
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import FrameExecutor
from nightlog.coordinator.illumination_job import (
    BuiltIllumination,
    IlluminationJob,
    build_illumination_job,
)
from nightlog.coordinator.master_plan import BuildOutcome
from nightlog.coordinator.provenance import (
    master_entries,
    parameters_digest,
    set_master_cards,
)
from nightlog.coordinator.reduce_plan import FramePlan, plan_frame
from nightlog.coordinator.retry import failure_cause
from nightlog.errors import NightlogError
from nightlog.reduction.sky_illumination import SkyFlatOptions
from nightlog.states import BuildStatus, FrameStatus, ProductKind

__all__ = ["IlluminationPlan", "plan_illumination", "run_illumination"]

_FAILURES = (NightlogError, SQLAlchemyError, OSError)
IlluminationWork = Callable[[IlluminationJob], BuiltIllumination]


@dataclass(frozen=True, slots=True)
class IlluminationPlan:
    """A model to build: the worker's job and what the record needs besides."""

    job: IlluminationJob
    night: dt.date
    group_key: str
    group: dict[str, object]
    profile: str
    instrument: str | None
    setup_key: str
    filter: str | None
    version: int
    previous_id: int | None
    inputs_key: str
    flat_id: int
    masters: dict[str, int]
    parameters: dict[str, object]
    considered: tuple[tuple[int, str, str | None], ...]  # (frame id, sha256, reason left out)
    first_obs: dt.datetime
    last_obs: dt.datetime
    n_used: int
    software_version: str


def _group_key(frame: Frame, ctx: JobContext) -> tuple[str, dict[str, object]]:
    spec = group_of(frame, "flat", ctx.profile_of(frame))
    return f"{ILLUMINATION_KIND}|{spec.key.split('|', 1)[1]}", dict(spec.values)


def _groups(session: Session, ctx: JobContext, frame_ids: Sequence[int]
            ) -> dict[tuple[dt.date, str], list[Frame]]:
    """The (night, group key) of each given frame whose profile asks for a model,
    with every usable full frame of that night's group."""
    wanted: set[tuple[dt.date, str]] = set()
    nights: set[dt.date] = set()
    for i in range(0, len(frame_ids), 500):
        for frame in session.scalars(select(Frame).where(Frame.id.in_(frame_ids[i:i + 500]))):
            if (frame.kind == "science" and frame.window is None
                    and ctx.profile_of(frame).illumination == "night-sky"):
                wanted.add((frame.night, _group_key(frame, ctx)[0]))
                nights.add(frame.night)
    groups: dict[tuple[dt.date, str], list[Frame]] = {}
    for night in sorted(nights):
        for frame in session.scalars(
                select(Frame).where(Frame.kind == "science", Frame.night == night,
                                    Frame.window.is_(None), Frame.is_latest.is_(True),
                                    Frame.status == FrameStatus.OK)
                .order_by(Frame.obs_time, Frame.id)):
            key = (night, _group_key(frame, ctx)[0])
            if key in wanted:
                groups.setdefault(key, []).append(frame)
    return groups


def _options(ctx: JobContext, frame: Frame) -> SkyFlatOptions:
    profile = ctx.profile_of(frame)
    return SkyFlatOptions(degree=profile.illumination_degree,
                          min_frames=profile.illumination_min_frames)


def _inputs_key(plans: Sequence[FramePlan], options: SkyFlatOptions, software: str) -> str:
    payload = {"frames": sorted(p.key for p in plans),
               "options": dataclasses.asdict(options), "software": software}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def plan_illumination(session: Session, ctx: JobContext, night: dt.date, group_key: str,
                      members: Sequence[Frame]) -> IlluminationPlan | BuildOutcome | None:
    """Decide what building the model of one group takes (nothing written).

    Returns
    -------
    IlluminationPlan, BuildOutcome or None
        The plan; a ``skipped`` outcome (too few frames, with the reason); or
        ``None`` when the group's newest model is up to date.
    """
    first = members[0]
    profile = ctx.profile_of(first)
    need = profile.illumination_min_frames
    skipped = BuildOutcome(kind=ILLUMINATION_KIND, night=night, group_key=group_key,
                           status=BuildStatus.SKIPPED)
    if len(members) < need:
        skipped.reason = (f"{len(members)} science frame(s) of this set-up and filter, "
                          f"{need} needed (illumination_min_frames of profile "
                          f"{profile.name!r}): the frames keep the flat's illumination")
        return skipped
    planned: list[tuple[Frame, FramePlan]] = []
    left_out: dict[int, str] = {}
    for frame in members:
        plan = plan_frame(session, frame, ctx, kind=ProductKind.FINAL, force=True,
                          illumination=False)
        if not isinstance(plan, FramePlan):
            left_out[frame.id] = f"not reducible: {plan.reason}"
            continue
        flat = next((mid for role, mid, _ in plan.masters if role == "flat"), None)
        if flat is None:
            left_out[frame.id] = "no master flat: nothing to correct"
            continue
        planned.append((frame, plan))
    flats = Counter(next(mid for role, mid, _ in p.masters if role == "flat")
                    for _, p in planned)
    if not flats:
        skipped.reason = "no frame of the group has a master flat: " + "; ".join(
            sorted(set(left_out.values()))[:3])
        return skipped
    flat_id = flats.most_common(1)[0][0]
    used: list[tuple[Frame, FramePlan]] = []
    for frame, plan in planned:
        if dict((r, m) for r, m, _ in plan.masters)["flat"] == flat_id:
            used.append((frame, plan))
        else:
            left_out[frame.id] = f"divided by another flat than the group's ({flat_id})"
    if len(used) < need:
        skipped.reason = (f"{len(used)} usable science frame(s) of this set-up and filter, "
                          f"{need} needed (illumination_min_frames of profile "
                          f"{profile.name!r}); left out: "
                          + "; ".join(sorted(set(left_out.values()))[:3]))
        return skipped
    options = _options(ctx, first)
    key = _inputs_key([p for _, p in used], options, ctx.software_version)
    previous = latest_version(session, group_key, night)
    if previous is not None and (previous.parameters or {}).get("inputs_key") == key:
        return None
    version = 1 if previous is None else previous.version + 1
    path = ctx.layout.master_path(instrument=first.instrument, kind=ILLUMINATION_KIND,
                                  night=night, group_key=group_key, version=version)
    masters = {role: mid for role, mid, _ in used[0][1].masters}
    rows = {m.id: m for m in session.scalars(select(Master).where(
        Master.id.in_(list(masters.values()))))}
    header = fits.Header()
    header["NLKIND"] = (ILLUMINATION_KIND, "nightlog master kind")
    header["NLNIGHT"] = (night.isoformat(), "observing night of the inputs")
    header["NLVERS"] = (version, "version of this group's master")
    header["NLSOFT"] = (ctx.software_version, "nightlog version")
    parameters = {"inputs_key": key, "masters": masters,
                  "options": dataclasses.asdict(options)}
    parameters["digest"] = parameters_digest(parameters)
    header["NLPARSHA"] = (parameters["digest"], "SHA-256 of the model's parameters")
    set_master_cards(header, {role: rows.get(mid) for role, mid in masters.items()})
    shape = (used[0][0].naxis2, used[0][0].naxis1)
    trimmed = ctx.preparation_of(first).trimmed_shape(shape)
    ys, xs = profile.flat_scale_slices(trimmed)
    jobs = tuple(dataclasses.replace(
        p.job, quality=None,
        params=dataclasses.replace(p.job.params, cosmic_rays=dataclasses.replace(
            p.job.params.cosmic_rays, enabled=False))) for _, p in used)
    job = IlluminationJob(
        frames=jobs, options=options,
        scale_region=(ys.start or 0, ys.stop or trimmed[0], xs.start or 0,
                      xs.stop or trimmed[1]),
        target=str(path), cards=tuple((c.keyword, c.value, c.comment) for c in header.cards),
        provenance=tuple(master_entries(members, left_out,
                                        {r: rows.get(m) for r, m in masters.items()})),
        mode=ctx.layout.file_mode())
    _, group = _group_key(first, ctx)
    return IlluminationPlan(
        job=job, night=night, group_key=group_key, group=group, profile=profile.name,
        instrument=first.instrument, setup_key=first.setup_key, filter=first.filter,
        version=version, previous_id=None if previous is None else previous.id,
        inputs_key=key, flat_id=flat_id, masters=masters, parameters=parameters,
        considered=tuple((f.id, f.sha256, left_out.get(f.id)) for f in members),
        first_obs=min(f.obs_time for f, _ in used), last_obs=max(
            f.obs_time + dt.timedelta(seconds=f.exptime or 0.0) for f, _ in used),
        n_used=len(used), software_version=ctx.software_version)


def record_illumination(session: Session, plan: IlluminationPlan, built: BuiltIllumination
                        ) -> tuple[Master, bool]:
    """Record ``built`` (no commit); return the group's newest model and whether it is
    this one (another process may have recorded the group meanwhile)."""
    newest = latest_version(session, plan.group_key, plan.night)
    if (None if newest is None else newest.id) != plan.previous_id:
        assert newest is not None
        return newest, newest.path == built.path
    master = add_master(session, NewMaster(
        kind=ILLUMINATION_KIND, profile=plan.profile, instrument=plan.instrument,
        setup_key=plan.setup_key, group_key=plan.group_key, group=plan.group,
        filter=plan.filter, night=plan.night, version=plan.version, path=built.path,
        sha256=built.sha256, size=built.size, first_obs=plan.first_obs,
        last_obs=plan.last_obs, n_frames=plan.n_used,
        stats={**built.stats, "flat_id": plan.flat_id, "masters_used": plan.masters},
        parameters=dict(plan.parameters),
        software_version=plan.software_version,
    ), [MasterInputRecord(frame_id=fid, sha256=sha, used=reason is None, reason=reason)
        for fid, sha, reason in plan.considered], supersedes=plan.previous_id)
    return master, True


def _failed(night: dt.date, group_key: str, exc: BaseException) -> BuildOutcome:
    return BuildOutcome(kind=ILLUMINATION_KIND, night=night, group_key=group_key,
                        status=BuildStatus.FAILED,
                        reason=f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}",
                        cause=failure_cause(exc))


def run_illumination(engine: Engine, ctx: JobContext, frame_ids: Sequence[int], *,
                     executor: FrameExecutor,
                     work: IlluminationWork = build_illumination_job) -> list[BuildOutcome]:
    """Build the night-sky illumination models the given science frames need.

    Parameters
    ----------
    engine, ctx
        The catalogue and the job context.
    frame_ids : sequence of int
        Science frames about to be reduced; the groups (night, set-up, filter) of
        those whose profile says ``illumination = "night-sky"`` are looked at,
        each with all its night's frames.
    executor : FrameExecutor
        The workers (those of the night's master builds and reductions).
    work : callable
        The worker function, importable by name where the workers run.

    Returns
    -------
    list of BuildOutcome
        One per group built, skipped (with the reason) or failed; none for a group
        whose model is up to date.
    """
    make_session = make_sessionmaker(engine)
    outcomes: list[BuildOutcome] = []
    in_flight: dict[int, IlluminationPlan] = {}
    with make_session() as session:
        groups = _groups(session, ctx, list(frame_ids))
        for (night, group_key), members in sorted(groups.items()):
            try:
                plan = plan_illumination(session, ctx, night, group_key, members)
            except _FAILURES as exc:
                outcomes.append(_failed(night, group_key, exc))
                continue
            if isinstance(plan, IlluminationPlan):
                in_flight[executor.submit(work, plan.job)] = plan
            elif plan is not None:
                outcomes.append(plan)
    while in_flight:
        for token, result, error in executor.wait():
            plan = in_flight.pop(token)
            if error is not None:
                outcomes.append(_failed(plan.night, plan.group_key, error))
                continue
            assert isinstance(result, BuiltIllumination)
            outcomes.append(_record(make_session, ctx, plan, result))
    return outcomes


def _record(make_session: Callable[[], Session], ctx: JobContext, plan: IlluminationPlan,
            built: BuiltIllumination) -> BuildOutcome:
    def _one() -> tuple[int, int, bool]:
        with make_session() as session, session.begin():
            master, ours = record_illumination(session, plan, built)
            return master.id, master.version, ours
    try:
        master_id, version, ours = ctx.db_backoff.call(_one)
    except BaseException as exc:
        Path(built.path).unlink(missing_ok=True)
        if isinstance(exc, _FAILURES):
            return _failed(plan.night, plan.group_key, exc)
        raise
    outcome = BuildOutcome(kind=ILLUMINATION_KIND, night=plan.night, group_key=plan.group_key,
                           status=BuildStatus.BUILT, master_id=master_id, version=version,
                           n_used=plan.n_used, seconds=built.seconds, worker=built.worker,
                           rejected=[(fid, r) for fid, _, r in plan.considered if r])
    if not ours:
        Path(built.path).unlink(missing_ok=True)
        outcome.status, outcome.reason, outcome.n_used = BuildStatus.SKIPPED, "built meanwhile", 0
    return outcome
