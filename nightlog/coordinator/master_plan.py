"""The catalogue's two parts of a master build: the plan before, the record after.

A master is built in three phases, as a reduction is, so that workers never touch
the catalogue and no session is open while pixels are combined:

1. **plan** (:func:`plan_master`, coordinating process, caller's session): the
   group's frames, the masters to calibrate them with (or the policy's refusal),
   the checks that need no pixels (a frame's status, a dark's temperature), the
   version, path and header keywords. The result is a :class:`MasterPlan` whose
   :class:`~nightlog.coordinator.master_job.MasterJob` is small and picklable.
2. **work** (:func:`~nightlog.coordinator.master_job.build_master_job`, any
   worker): the checks on pixel levels, the combination, the characterisation,
   the file.
3. **record** (:func:`record_master`, coordinating process, one transaction): the
   catalogue's :func:`~nightlog.catalogue.masters.add_master`, the frames
   considered with their verdicts, the previous version superseded; then
   (:func:`record_health`) the new master's figures judged against its group's
   history, each alarm recorded and its webhook event queued, in the same
   transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from astropy.io import fits
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import GroupSpec
from nightlog.calibration.header_checks import header_disagreements, header_numbers
from nightlog.calibration.health import HealthSettings
from nightlog.calibration.health_check import judge_master
from nightlog.calibration.input_checks import CalibrationInput, check_header
from nightlog.calibration.matching import match_kind
from nightlog.calibration.missing import missing_policy, provisional_minimum
from nightlog.catalogue.alarms import record_alarm
from nightlog.catalogue.masters import (
    MasterInputRecord,
    NewMaster,
    add_master,
    latest_version,
)
from nightlog.catalogue.models import Frame, Master
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.master_job import BuiltMaster, MasterJob, MasterRef
from nightlog.coordinator.provenance import set_master_cards
from nightlog.coordinator.window_plan import master_crops
from nightlog.notify.events import queue_alarm
from nightlog.states import BuildStatus, FailureCause, MissingPolicy
from nightlog.store.layout import name_beside

__all__ = ["CALIBRATED_WITH", "BuildOutcome", "DueGroup", "MasterPlan", "calibration_input",
           "master_flags", "plan_master", "record_master"]

#: The masters each kind is calibrated with before it is combined.
CALIBRATED_WITH: dict[str, tuple[str, ...]] = {"bias": (), "dark": ("bias",),
                                               "flat": ("bias", "dark")}


@dataclass(frozen=True, slots=True)
class DueGroup:
    """A group whose master should be (re)built."""

    group: GroupSpec
    night: dt.date
    frame_ids: tuple[int, ...]
    previous_id: int | None
    #: Completed with frames of the neighbouring nights (the profile's fallback_nights).
    multi_night: bool = False
    #: Fewer frames than min_frames (the profile's provisional_min_frames).
    provisional: bool = False
    #: The nights its frames come from.
    nights: tuple[dt.date, ...] = ()

    @property
    def kind(self) -> str:
        return self.group.kind


@dataclass(slots=True)
class BuildOutcome:
    """What happened to one due group.

    ``status`` is ``built``, ``skipped`` (``reason`` says why), ``too-few`` (the
    group is short of frames: ``n_used`` its count, ``reason`` what is missing) or
    ``failed``; ``flags`` say a master is ``multi-night`` or ``provisional``;
    ``cause`` says why it failed (the catalogue away, the archive refusing writes,
    or the work itself); ``seconds`` and ``worker`` say where the build ran and how long
    it took, ``cpu_seconds`` the CPU time of its process meanwhile and ``peak_rss`` that
    process's peak resident memory during the build (bytes, ``None`` where unknown);
    ``warnings`` are the master's header figures that disagree with its
    measurement (:mod:`nightlog.calibration.header_checks`).
    """

    kind: str
    night: dt.date
    group_key: str
    status: BuildStatus
    reason: str = ""
    master_id: int | None = None
    version: int | None = None
    n_used: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    worker: str = ""
    cause: FailureCause | None = None
    warnings: list[str] = field(default_factory=list)
    flags: tuple[str, ...] = ()
    peak_rss: int | None = None
    cpu_seconds: float = 0.0


def master_flags(multi_night: bool, provisional: bool) -> tuple[str, ...]:
    """The words of a master's flags, as ``calib list`` and ``match`` show them."""
    return (("multi-night",) if multi_night else ()) + (("provisional",) if provisional
                                                        else ())


@dataclass(frozen=True, slots=True)
class MasterPlan:
    """A master to build: the worker's job and what the record needs besides."""

    job: MasterJob
    kind: str
    night: dt.date
    group_key: str
    group: dict[str, Any]
    profile: str
    instrument: str | None
    setup_key: str
    filter: str | None
    set_temp: float | None
    version: int
    previous_id: int | None
    is_rate: bool
    software_version: str
    #: The first frame's header gain and read noise (:func:`header_numbers`), checked
    #: against what the master measures, and the profile's gain.
    header: dict[str, tuple[str, float]] = field(default_factory=dict)
    profile_gain: float | None = None
    quantisation_step: float | None = None
    multi_night: bool = False
    provisional: bool = False


def calibration_input(frame: Frame) -> CalibrationInput:
    """The plain facts of a catalogued calibration frame that its master build needs."""
    return CalibrationInput(
        id=frame.id, path=frame.path, hdu=frame.hdu, sha256=frame.sha256,
        obs_time=frame.obs_time, exptime=frame.exptime, naxis1=frame.naxis1,
        naxis2=frame.naxis2, biassec=frame.biassec, datasec=frame.datasec,
        trimsec=frame.trimsec, saturation=frame.saturation, gain=frame.gain,
        read_noise=frame.read_noise, ccd_temp=frame.ccd_temp, set_temp=frame.set_temp,
        status=frame.status, status_reason=frame.status_reason,
        amplifiers=frame.amplifiers)


def _cards(kind: str, due: DueGroup, version: int, software_version: str,
           used: dict[str, Master | None], roles: tuple[str, ...]
           ) -> tuple[tuple[str, Any, str], ...]:
    header = fits.Header()
    header["NLKIND"] = (kind, "nightlog master kind")
    header["NLNIGHT"] = (due.night.isoformat(), "observing night of the inputs")
    header["NLMULTI"] = (due.multi_night, "combined from frames of several nights")
    if due.multi_night:
        header["NLNIGHTS"] = (",".join(n.strftime("%m%d") for n in due.nights)[:68],
                              "nights (MMDD) of the inputs")
    header["NLPROV"] = (due.provisional, "provisional: fewer frames than min_frames")
    header["NLVERS"] = (version, "version of this group's master")
    header["NLSOFT"] = (software_version, "nightlog version")
    set_master_cards(header, used, roles=roles)
    return tuple((card.keyword, card.value, card.comment) for card in header.cards)


def plan_master(session: Session, due: DueGroup, ctx: JobContext
                ) -> MasterPlan | BuildOutcome:
    """Decide what building the master of ``due`` takes, in the caller's session
    (nothing written, no pixel read).

    Returns
    -------
    MasterPlan or BuildOutcome
        The plan, or a ``skipped`` outcome: the policy refuses to go on without a
        master it needs, or too few frames pass the checks that need no pixels.
    """
    members = [f for f in (session.get(Frame, i) for i in due.frame_ids) if f is not None]
    profile = ctx.registry.get(due.group.profile)
    skipped = BuildOutcome(kind=due.kind, night=due.night, group_key=due.group.key,
                           status=BuildStatus.SKIPPED)
    if not members:
        skipped.reason = "its frames are gone from the catalogue"
        return skipped
    first = members[0]
    prepare = ctx.preparation_of(first)
    mid = members[len(members) // 2].obs_time
    roles = CALIBRATED_WITH[due.kind]
    used: dict[str, Master | None] = {}
    for role in roles:
        # A flat's build subtracts one dark: an interpolated pair is for science.
        match = match_kind(session, first, role, profile, ctx.policy, at=mid,
                           allow_pair=False)
        if (match.chosen is None
                and missing_policy(profile, ctx.policy, role) is not MissingPolicy.REDUCE_WITHOUT):
            # fail and hold alike: the group waits (its frames stay in no master).
            skipped.reason = f"needs a {role} master: {match.reason}"
            return skipped
        used[role] = match.chosen

    considered = tuple(calibration_input(f) for f in members)
    accepted, rejected = check_header(due.kind, considered,
                                      dark_temp_tolerance=profile.dark_temp_tolerance)
    minimum = profile.min_frames.get(due.kind, 5)
    if due.provisional:
        minimum = provisional_minimum(profile, due.kind) or minimum
    if len(accepted) < minimum:
        skipped.rejected = rejected
        skipped.reason = (f"{len(accepted)} usable frame(s) after checks, {minimum} needed"
                          + (f"; rejected: {'; '.join(r for _, r in rejected[:3])}"
                             if rejected else ""))
        return skipped

    previous = None if due.previous_id is None else session.get(Master, due.previous_id)
    version = 1 if previous is None else previous.version + 1
    path = ctx.layout.master_path(instrument=first.instrument, kind=due.kind,
                                  night=due.night, group_key=due.group.key, version=version)
    if path.exists():
        # Left by a build interrupted before its commit (no row names it), or being
        # written by a concurrent build of the same version (whose commit will win
        # or lose on the unique version): never overwrite it, write beside it.
        path = name_beside(path)
    crops = master_crops(first, used, profile)
    refs = tuple(MasterRef(role=role, id=m.id, path=m.path, sha256=m.sha256,
                           level=m.stats.get("level") if role == "bias" else None,
                           crop=crops.get(role),

                           read_noise_adu=(m.stats.get("read_noise_adu") if role == "bias"
                                           else None),
                           n_frames=m.n_frames if role == "bias" else None)
                 for role, m in used.items() if m is not None)
    is_rate = due.kind == "dark" and profile.darks_scale
    job = MasterJob(
        kind=due.kind, roles=roles, inputs=tuple(accepted), considered=considered,
        rejected=tuple(rejected), prepare=prepare, masters=refs, checks=ctx.policy.checks,
        min_frames=minimum, saturation=profile.saturation or profile.bit_depth_saturation,
        darks_scale=profile.darks_scale,
        flat_region=profile.flat_scale_slices(
            prepare.trimmed_shape((first.naxis2, first.naxis1))),
        target=str(path),
        cards=_cards(due.kind, due, version, ctx.software_version, used, roles),
        memory_limit=ctx.memory_limit, combine=ctx.combine,
        scratch_dir=None if ctx.scratch_dir is None else str(ctx.scratch_dir),
        mode=ctx.layout.file_mode(), read_noise_map=profile.read_noise_map,
        noisy_factor=profile.noisy_factor, quantisation_step=profile.quantisation_step,
        night_of=(tuple((f.id, f.night.isoformat()) for f in members) if due.multi_night
                  else ()))
    return MasterPlan(
        job=job, kind=due.kind, night=due.night, group_key=due.group.key,
        group={k: v for k, v in due.group.values}, profile=profile.name,
        instrument=first.instrument, setup_key=first.setup_key,
        filter=first.filter if due.kind == "flat" else None, set_temp=first.set_temp,
        version=version, previous_id=due.previous_id, is_rate=is_rate,
        software_version=ctx.software_version,
        header=header_numbers(first.header, profile.gain_keywords,
                              profile.read_noise_keywords),
        profile_gain=profile.gain, quantisation_step=profile.quantisation_step,
        multi_night=due.multi_night, provisional=due.provisional)


def record_master(session: Session, plan: MasterPlan, built: BuiltMaster
                  ) -> tuple[Master, bool]:
    """Record ``built`` in the caller's session (no commit); return the group's
    newest master and whether it is this one.

    Should the group have a newer version than when it was planned (committed by
    an earlier try whose answer was lost, or by another process), nothing is
    added: the caller keeps that master and deletes its own file unless the
    catalogue names it (the same transaction, committed and retried).
    """
    newest = latest_version(session, plan.group_key, plan.night)
    if (None if newest is None else newest.id) != plan.previous_id:
        assert newest is not None
        return newest, newest.path == built.path
    reasons = dict(built.rejected)
    stats = dict(built.stats)
    disagrees = header_disagreements(plan.kind, stats, plan.header, plan.profile_gain,
                                     plan.quantisation_step)
    if disagrees:
        stats["header_disagrees"] = disagrees
    master = add_master(session, NewMaster(
        kind=plan.kind, profile=plan.profile, instrument=plan.instrument,
        setup_key=plan.setup_key, group_key=plan.group_key, group=plan.group,
        filter=plan.filter, set_temp=plan.set_temp,
        exptime=None if (plan.kind != "dark" or plan.is_rate) else built.exptime,
        is_rate=plan.is_rate, night=plan.night, version=plan.version, path=built.path,
        sha256=built.sha256, size=built.size, first_obs=built.first_obs,
        last_obs=built.last_obs, n_frames=len(built.used), stats=stats,
        parameters=built.parameters, software_version=plan.software_version,
        multi_night=plan.multi_night, provisional=plan.provisional,
    ), [MasterInputRecord(frame_id=f.id, sha256=f.sha256, used=f.id not in reasons,
                          reason=reasons.get(f.id)) for f in plan.job.considered],
        supersedes=plan.previous_id)
    return master, True


def record_health(session: Session, master: Master, settings: HealthSettings) -> int:
    """Judge ``master`` against its group's history; record each alarm and queue its
    event (caller's transaction). Returns the number of new alarms."""
    new = 0
    for alarm in judge_master(session, master, settings):
        row, created = record_alarm(session, master, alarm)
        if created:
            queue_alarm(session, row)
            new += 1
    return new
