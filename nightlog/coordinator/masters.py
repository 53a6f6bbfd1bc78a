"""Building master calibrations when a group has enough frames.

A group (kind, profile grouping fields, night) is *due* when it holds at least
the profile's minimum number of frames and its frame set differs from the inputs
of its newest master: a new group gets version 1, a group that received more
frames is rebuilt as the next version and the old one is kept, superseded, for
provenance.

Before a frame enters a master it is checked, and every rejection is recorded on
the master with its reason: a dark whose CCD temperature departs from its set
point; a bias whose level or noise departs from its group; a flat that is
under-exposed or too close to saturation. Frames flagged bad never enter.

The master file carries its provenance: the software version, a parameter
digest, the masters it was calibrated with (id and checksum) and a
``PROVENANCE`` table of every frame considered, used or rejected.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import GroupSpec, group_of
from nightlog.calibration.matching import match_kind
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.masters import inputs_of, latest_version
from nightlog.catalogue.models import Frame, Master, MasterInput
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.preparation import preparation_for
from nightlog.coordinator.provenance import master_entries, parameters_digest, set_master_cards
from nightlog.coordinator.quality import check_inputs
from nightlog.errors import NightlogError
from nightlog.reduction.characterise import gain_from_flats, read_noise_from_biases
from nightlog.reduction.masters import (
    CombineOptions,
    MasterResult,
    make_master_bias,
    make_master_dark,
    make_master_flat,
)
from nightlog.reduction.products import to_hdulist
from nightlog.reduction.rejection import ClipSpec
from nightlog.store.images import read_image, write_hdulist
from nightlog.store.layout import name_beside
from nightlog.store.products import read_product

__all__ = ["BuildOutcome", "DueGroup", "build_master", "find_due", "run_build"]

_ORDER = {"bias": 0, "dark": 1, "flat": 2}


@dataclass(frozen=True, slots=True)
class DueGroup:
    """A group whose master should be (re)built."""

    group: GroupSpec
    night: dt.date
    frame_ids: tuple[int, ...]
    previous_id: int | None

    @property
    def kind(self) -> str:
        return self.group.kind


@dataclass(slots=True)
class BuildOutcome:
    """What happened to one due group."""

    kind: str
    night: dt.date
    group_key: str
    status: str  # 'built', 'skipped' or 'failed'
    reason: str = ""
    master_id: int | None = None
    version: int | None = None
    n_used: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _candidate_nights(session: Session) -> list[dt.date]:
    used = select(MasterInput.frame_id)
    rows = session.execute(
        select(Frame.night).where(Frame.kind.in_(tuple(_ORDER)), Frame.is_latest.is_(True),
                                  Frame.status == "ok", Frame.id.not_in(used)).distinct()
    )
    return sorted(r[0] for r in rows)


def find_due(session: Session, ctx: JobContext, *, night: dt.date | None = None
             ) -> list[DueGroup]:
    """Groups that need a (new version of their) master, bias before dark before flat.

    Without ``night``, only nights with calibration frames not yet in any master
    are looked at.
    """
    nights = [night] if night is not None else _candidate_nights(session)
    due: list[DueGroup] = []
    for n in nights:
        frames = session.scalars(
            select(Frame).where(Frame.night == n, Frame.kind.in_(tuple(_ORDER)),
                                Frame.is_latest.is_(True), Frame.status == "ok")
            .order_by(Frame.obs_time, Frame.id)
        )
        groups: dict[str, tuple[GroupSpec, list[Frame]]] = {}
        for frame in frames:
            spec = group_of(frame, frame.kind, ctx.profile_of(frame))
            groups.setdefault(spec.key, (spec, []))[1].append(frame)
        for spec, members in groups.values():
            profile = ctx.registry.get(spec.profile)
            if len(members) < profile.min_frames.get(spec.kind, 5):
                continue
            previous = latest_version(session, spec.key, n)
            ids = tuple(f.id for f in members)
            if previous is not None:
                before = {mi.frame_id for mi, _ in inputs_of(session, previous)}
                if before == set(ids):
                    continue
            due.append(DueGroup(spec, n, ids, None if previous is None else previous.id))
    due.sort(key=lambda d: (d.night, _ORDER[d.kind], d.group.key))
    return due


def _load_master(master: Master | None) -> Any:
    return None if master is None else read_product(master.path).ccd


def _characterise(kind: str, frames: Sequence[Frame], prepare: Any,
                  bias: Any) -> dict[str, Any]:
    """Read noise from the first two biases, gain from the first two flats."""
    if len(frames) < 2:
        return {}
    gain = frames[0].gain
    # One overscan level per frame: it takes the bias level away without adding the
    # row-to-row noise of a per-row estimate to the differences measured here.
    prepare = dataclasses.replace(prepare, per_row=False)
    try:
        a = prepare(read_image(frames[0].path, frames[0].hdu))
        b = prepare(read_image(frames[1].path, frames[1].hdu))
        if kind == "bias":
            rn = read_noise_from_biases(a, b, clip_sigma=5.0, gain=gain)
            return {"read_noise_adu": rn.adu, "read_noise_e": rn.electrons}
        if kind == "flat" and bias is not None:
            g = gain_from_flats(a, b, master_bias=bias,
                                read_noise_adu=(frames[0].read_noise or 0.0) / (gain or 1.0)
                                if frames[0].read_noise else None)
            return {"gain_from_flats": g}
    except NightlogError as exc:
        return {"characterisation_error": str(exc)}
    return {}


def _noise_model_options(options: CombineOptions, frames: Sequence[Frame]) -> CombineOptions:
    """Clip biases and flats against the detector's noise model (IRAF ``ccdclip``)
    when every frame knows its gain and read noise, else keep the robust MAD clip.

    With five frames a MAD measured from the stack itself is so uncertain, and so
    pulled by frame-to-frame bias offsets, that the clip rejects good values: on a
    simulated LFC night the master bias's noise came out 14% above read noise /
    sqrt(N), against 0.1% with the noise model (tests/test_recovery.py). Flats are
    scaled before combining, which the noise model takes into account; darks are
    combined as rates, in which it does not hold, and keep the MAD clip.
    """
    gains = {f.gain for f in frames}
    noises = {f.read_noise for f in frames}
    if len(gains) != 1 or len(noises) != 1:
        return options
    gain, read_noise = gains.pop(), noises.pop()
    if not gain or gain <= 0 or read_noise is None or read_noise <= 0:
        return options
    return dataclasses.replace(options, clip=ClipSpec(
        low=3.0, high=3.0, centre="median", spread="noise", read_noise=read_noise,
        gain=gain, max_iters=1))


def _describe_combine(options: CombineOptions) -> str:
    clip = options.clip
    if clip is None:
        return options.method
    spread = {"mad": "MAD", "std": "standard deviation"}.get(clip.spread) or (
        f"noise model (read noise {clip.read_noise} e-, gain {clip.gain} e-/ADU)")
    low = "-" if clip.low is None else f"{clip.low:g}"
    high = "-" if clip.high is None else f"{clip.high:g}"
    return (f"{options.method}, {low}/{high}-sigma clip about the "
            f"{clip.centre} by {spread}, {clip.max_iters} pass(es)")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def build_master(session: Session, due: DueGroup, ctx: JobContext, *,
                 written: list[Path]) -> BuildOutcome:
    """Build the master of ``due`` in the caller's session (no commit).

    The file is written under its final name before the rows are added; its path
    is appended to ``written`` so the caller can delete it if the transaction
    fails.
    """
    frames = [session.get(Frame, i) for i in due.frame_ids]
    members = [f for f in frames if f is not None]
    profile = ctx.registry.get(due.group.profile)
    outcome = BuildOutcome(kind=due.kind, night=due.night, group_key=due.group.key,
                           status="skipped")
    prepare = preparation_for(members[0], profile)
    mid = members[len(members) // 2].obs_time
    needs = {"bias": (), "dark": ("bias",), "flat": ("bias", "dark")}[due.kind]
    used_masters: dict[str, Master | None] = {}
    for kind in needs:
        match = match_kind(session, members[0], kind, profile, ctx.policy, at=mid)
        if match.chosen is None and ctx.policy.on_missing.get(kind) == "stop":
            outcome.reason = f"needs a {kind} master: {match.reason}"
            return outcome
        used_masters[kind] = match.chosen
    bias_ccd = _load_master(used_masters.get("bias"))
    dark_ccd = _load_master(used_masters.get("dark"))

    bias_level = None if used_masters.get("bias") is None else \
        used_masters["bias"].stats.get("level")  # type: ignore[union-attr]
    accepted, rejected = check_inputs(due.kind, members, profile, ctx.policy.checks,
                                      bias_level=bias_level)
    outcome.rejected = rejected
    minimum = profile.min_frames.get(due.kind, 5)
    if len(accepted) < minimum:
        outcome.reason = (f"{len(accepted)} usable frame(s) after checks, {minimum} needed"
                          + (f"; rejected: {'; '.join(r for _, r in rejected[:3])}"
                             if rejected else ""))
        return outcome

    paths = [f.path for f in accepted]
    hdus = {f.hdu for f in accepted}
    inputs: list[Any] = paths if len(hdus) == 1 else [read_image(f.path, f.hdu) for f in accepted]
    options = CombineOptions(hdu=hdus.pop() if len(hdus) == 1 else 0,
                             memory_limit=ctx.memory_limit,
                             scratch_dir=None if ctx.scratch_dir is None else str(ctx.scratch_dir))
    if due.kind in ("bias", "flat"):
        options = _noise_model_options(options, accepted)
    result: MasterResult
    if due.kind == "bias":
        result = make_master_bias(inputs, prepare=prepare, options=options)
    elif due.kind == "dark":
        times = [f.exptime or 0.0 for f in accepted]
        result = make_master_dark(inputs, times, bias=bias_ccd, prepare=prepare,
                                  scale_to_rate=profile.darks_scale, options=options)
    else:
        times = [f.exptime or 0.0 for f in accepted]
        region = profile.flat_scale_slices(_trimmed_shape(prepare, members[0]))
        result = make_master_flat(inputs, bias=bias_ccd, dark=dark_ccd,
                                  exptimes=times if dark_ccd is not None else None,
                                  prepare=prepare, scale_region=region, options=options)

    previous = None if due.previous_id is None else session.get(Master, due.previous_id)
    version = 1 if previous is None else previous.version + 1
    path = ctx.layout.master_path(instrument=members[0].instrument, kind=due.kind,
                                  night=due.night, group_key=due.group.key, version=version)
    if path.exists():
        # Left by a build interrupted before its commit (no row names it), or being
        # written by a concurrent build of the same version (whose commit will win
        # or lose on the unique version): never overwrite it, write beside it.
        path = name_beside(path)
    ccd = result.ccd
    header = ccd.header
    header["NLKIND"] = (due.kind, "nightlog master kind")
    header["NLNIGHT"] = (due.night.isoformat(), "observing night of the inputs")
    header["NLVERS"] = (version, "version of this group's master")
    header["NLSOFT"] = (ctx.software_version, "nightlog version")
    header["NCOMBINE"] = (len(accepted), "frames combined")
    for f in accepted:
        header.add_history(f"input {os.path.basename(f.path)[:40]} sha256 {f.sha256[:16]}")
    for role, m in used_masters.items():
        if m is not None:
            header.add_history(f"{role} master {os.path.basename(m.path)[:40]} "
                               f"sha256 {m.sha256[:16]}")
    parameters: dict[str, Any] = {
        "preparation": prepare.describe(), "combine": _describe_combine(options),
        "flat_scale": "median of the profile's flat scale region"}
    digest = parameters_digest(parameters)
    header["NLPARSHA"] = (digest, "SHA-256 of the master parameters")
    set_master_cards(header, used_masters, roles=needs)
    reasons = dict(rejected)
    out = write_hdulist(path, to_hdulist(
        ccd, provenance=master_entries(members, reasons, used_masters)),
        mode=ctx.layout.file_mode())
    written.append(out.path)

    stats: dict[str, Any] = {
        "level": _finite(result.level), "noise": _finite(result.noise),
        "hot_pixels": result.hot_pixels, "low_pixels": result.low_pixels,
        "frame_levels": [_finite(s.median) for s in result.frame_stats],
        "rejected": len(rejected),
        "masters_used": {k: (None if m is None else m.id) for k, m in used_masters.items()},
    }
    if due.kind == "dark" and members[0].gain:
        stats["dark_current_e_per_s"] = _finite(result.level * members[0].gain) \
            if profile.darks_scale else None
    stats.update(_characterise(due.kind, accepted, prepare, bias_ccd))
    first, last = accepted[0].obs_time, accepted[-1].obs_time
    master = Master(
        kind=due.kind, profile=profile.name, instrument=members[0].instrument,
        setup_key=members[0].setup_key, group_key=due.group.key,
        group={k: v for k, v in due.group.values}, filter=members[0].filter
        if due.kind == "flat" else None, set_temp=members[0].set_temp,
        exptime=None if (due.kind != "dark" or profile.darks_scale) else accepted[0].exptime,
        is_rate=due.kind == "dark" and profile.darks_scale, night=due.night, version=version,
        path=str(out.path), sha256=out.sha256, size=out.size, first_obs=first, last_obs=last,
        mid_time=first + (last - first) / 2, n_frames=len(accepted), stats=stats,
        parameters={**parameters, "digest": digest},
        quality="good", created_at=dt.datetime.now(dt.UTC),
        software_version=ctx.software_version,
    )
    session.add(master)
    session.flush()
    for f in members:
        session.add(MasterInput(master_id=master.id, frame_id=f.id, used=f.id not in reasons,
                                reason=reasons.get(f.id), sha256=f.sha256))
    if previous is not None:
        previous.superseded_by_id = master.id
    session.flush()
    outcome.status = "built"
    outcome.master_id = master.id
    outcome.version = version
    outcome.n_used = len(accepted)
    return outcome


def _trimmed_shape(prepare: Any, frame: Frame) -> tuple[int, int]:
    from nightlog.sections import parse_section, section_shape

    shape = (frame.naxis2, frame.naxis1)
    if prepare.trim is None:
        return shape
    return section_shape(parse_section(prepare.trim, shape), shape)


def run_build(engine: Engine, ctx: JobContext, *, night: dt.date | None = None
              ) -> list[BuildOutcome]:
    """Build every due master: one committed transaction per master.

    A failure (bad file, full disk, a concurrent build of the same version) rolls
    that master back, deletes its file and is reported; the others go on. Groups
    are re-examined after each build, so darks use the bias just built. A
    catalogue that goes away (a server restart, a SQLite file locked for longer
    than the busy timeout) is waited for, within ``ctx.db_backoff``, and the
    master built again; then it is reported.
    """
    make_session = make_sessionmaker(engine)
    outcomes: list[BuildOutcome] = []
    done: set[tuple[str, dt.date]] = set()

    def _due() -> list[DueGroup]:
        with make_session() as session:
            return [d for d in find_due(session, ctx, night=night)
                    if (d.group.key, d.night) not in done]

    while True:
        due = ctx.db_backoff.call(_due)
        if not due:
            return outcomes
        item = due[0]
        done.add((item.group.key, item.night))
        try:
            outcome = ctx.db_backoff.call(functools.partial(_build_once, make_session, item,
                                                            ctx))
        except (NightlogError, SQLAlchemyError, OSError) as exc:
            reason = ("built concurrently by another process" if isinstance(exc, IntegrityError)
                      else f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            outcome = BuildOutcome(kind=item.kind, night=item.night, group_key=item.group.key,
                                   status="failed", reason=reason)
        outcomes.append(outcome)


def _build_once(make_session: Callable[[], Session], item: DueGroup, ctx: JobContext
                ) -> BuildOutcome:
    """One try at building ``item``'s master: its own transaction; its file deleted
    if the transaction does not commit."""
    written: list[Path] = []
    try:
        with make_session() as session, session.begin():
            newest = latest_version(session, item.group.key, item.night)
            if (None if newest is None else newest.id) != item.previous_id:
                # Committed by an earlier try whose connection was lost before it
                # heard so, or by another process: not built twice.
                return BuildOutcome(kind=item.kind, night=item.night,
                                    group_key=item.group.key, status="skipped",
                                    reason="built meanwhile",
                                    master_id=None if newest is None else newest.id,
                                    version=None if newest is None else newest.version)
            return build_master(session, item, ctx, written=written)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def group_counts(session: Session, ctx: JobContext, night: dt.date) -> dict[str, int]:
    """Frames per calibration group of ``night`` (for status displays)."""
    counts: dict[str, int] = defaultdict(int)
    for frame in session.scalars(select(Frame).where(Frame.night == night,
                                                     Frame.kind.in_(tuple(_ORDER)))):
        counts[group_of(frame, frame.kind, ctx.profile_of(frame)).key] += 1
    return dict(counts)
