"""Choosing the master calibrations of a frame, and saying why.

For a frame and each calibration it needs, every candidate master of that kind and
instrument is checked against each rule, and the verdicts are kept so that
``nightlog match`` can show a user why a master was or was not used:

``group.<field>``
    the master's grouping field equals the frame's (set temperature within the
    profile's tolerance; exposure time within the policy's tolerance for darks that
    do not scale);
``window``
    (a subarray frame, or a master made of them) the master is of the frame's
    window, or a full-frame master whose data hold the window (it is cropped to
    it): see :mod:`~nightlog.calibration.windows`;
``quality``
    the master is not marked bad;
``current``
    the master has not been superseded by a newer version;
``valid``
    the frame's time lies in the master's certified range, or else within the
    policy's window (days) of the middle of the master's inputs;
``fence``
    no hardware-change fence (:mod:`nightlog.catalogue.fences`) of the frame's
    instrument and set-up lies between the frame's time and the master's inputs
    (nor among them);
``earlier``
    (live mode only) every input of the master was taken before the frame.

When no master passes and the profile allows it (``dark_temperature_scaling``),
a science frame gets the master dark nearest in set temperature among those
failing only ``group.set_temp``, scaled to the frame's temperature
(:mod:`~nightlog.calibration.dark_temperature`).

Of the masters passing every rule, the nearest in time wins; ties go to the same
night, then more input frames, then the newer version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.calibration.candidate_masters import (
    AFTER,
    BEFORE,
    CERTIFIED,
    PAGE,
    FirstPages,
    Shape,
    certified_masters,
    first_pages,
    scope_params,
    side_masters,
)
from nightlog.calibration.dark_exposure import choose_dark, how_linear
from nightlog.calibration.dark_temperature import TemperatureScaling, scale_across_temperature
from nightlog.calibration.grouping import CALIBRATION_NEEDS, frame_field, group_fields
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.calibration.windows import window_verdict
from nightlog.catalogue.fences import fences_for
from nightlog.catalogue.models import Fence, Frame, Master
from nightlog.header.profiles import InstrumentProfile
from nightlog.states import MasterQuality

__all__ = ["Candidate", "KindMatch", "RuleResult", "match_frame", "match_kind"]


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule applied to one candidate."""

    rule: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A master considered for a frame, with every rule's verdict."""

    master: Master
    rules: tuple[RuleResult, ...]
    distance: dt.timedelta

    @property
    def usable(self) -> bool:
        return all(r.passed for r in self.rules)


@dataclass(frozen=True, slots=True)
class KindMatch:
    """The choice for one calibration kind."""

    kind: str
    chosen: Master | None
    candidates: tuple[Candidate, ...] = field(default=())
    #: The longer master dark when two are interpolated (``chosen`` the shorter).
    second: Master | None = None
    #: How a dark meets the frame's exposure (linear, exact, interpolated).
    how: str = ""
    #: Why nothing was chosen although candidates passed every rule (exposures), or
    #: why no dark of another set temperature could be scaled.
    note: str = ""
    #: A dark of another set temperature, scaled to the frame's
    #: (:mod:`~nightlog.calibration.dark_temperature`).
    temperature: TemperatureScaling | None = None

    @property
    def reason(self) -> str:
        """Why nothing was chosen (empty when a master was)."""
        if self.chosen is not None:
            return ""
        if self.note:
            return self.note
        if not self.candidates:
            return f"no {self.kind} master of this instrument exists"
        failing: dict[str, int] = {}
        for cand in self.candidates:
            for r in cand.rules:
                if not r.passed:
                    failing[r.rule] = failing.get(r.rule, 0) + 1
        summary = ", ".join(f"{rule} ({n})" for rule, n in sorted(failing.items()))
        return f"no usable {self.kind} master among {len(self.candidates)}: failed {summary}"


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def _group_rules(frame: Frame, master: Master, kind: str, profile: InstrumentProfile,
                 policy: CalibrationPolicy) -> list[RuleResult]:
    out = []
    group = master.group or {}
    for name in group_fields(profile, kind):
        want = frame_field(frame, name, profile)
        have = group.get(name)
        if name == "set_temp" and want is not None and have is not None:
            ok = abs(float(want) - float(have)) <= profile.dark_temp_tolerance
            detail = (f"frame {_fmt(want)} °C, master {_fmt(have)} °C "
                      f"(tolerance {profile.dark_temp_tolerance:g})")
        elif name == "exptime" and kind == "dark" and profile.dark_scaling == "interpolate":
            ok = True
            detail = (f"frame {_fmt(want)} s, master {_fmt(have)} s (dark_scaling "
                      "interpolate: the exposure is chosen below)")
        elif name == "exptime" and want is not None and have is not None:
            tol = policy.dark_exptime_tolerance * max(abs(float(want)), 1e-9)
            ok = abs(float(want) - float(have)) <= tol
            detail = f"frame {_fmt(want)} s, master {_fmt(have)} s (tolerance {tol:g} s)"
        else:
            ok = want == have
            detail = f"frame {_fmt(want)}, master {_fmt(have)}"
        out.append(RuleResult(f"group.{name}", ok, detail))
    return out


def _validity(frame_time: dt.datetime, master: Master, window_days: float) -> RuleResult:
    if master.valid_from is not None or master.valid_until is not None:
        lo = master.valid_from or dt.datetime.min.replace(tzinfo=dt.UTC)
        hi = master.valid_until or dt.datetime.max.replace(tzinfo=dt.UTC)
        ok = lo <= frame_time < hi
        return RuleResult("valid", ok, f"certified {_fmt(master.valid_from)} to "
                                       f"{_fmt(master.valid_until)}; frame at {frame_time}")
    gap = abs(frame_time - master.mid_time)
    ok = gap <= dt.timedelta(days=window_days)
    return RuleResult("valid", ok, f"{gap.total_seconds() / 86400:.2f} d from the master "
                                   f"(window ±{window_days:g} d)")


def _fence_rule(frame: Frame, master: Master, at: dt.datetime,
                fences: Sequence[Fence]) -> RuleResult:
    lo, hi = min(at, master.first_obs), max(at, master.last_obs)
    crossed = [f for f in fences if lo < f.at <= hi
               and (f.instrument is None or f.instrument == frame.instrument)
               and (f.setup_key is None or f.setup_key in (frame.setup_key, master.setup_key))]
    if not crossed:
        return RuleResult("fence", True, "no fence between the master and the frame")
    f = crossed[-1]
    return RuleResult("fence", False, f"fence {f.id} at {f.at.isoformat()} ({f.reason}) lies "
                                      "between the master and the frame")


def evaluate(frame: Frame, master: Master, kind: str, profile: InstrumentProfile,
             policy: CalibrationPolicy, *, at: dt.datetime, live: bool,
             fences: Sequence[Fence] = ()) -> Candidate:
    """Every rule's verdict for one master and one frame (``fences``: those of the
    frame's instrument, :func:`~nightlog.catalogue.fences.fences_for`)."""
    rules = _group_rules(frame, master, kind, profile, policy)
    window = window_verdict(frame, master, kind, profile)
    if window is not None:
        rules.append(RuleResult("window", window.passed, window.detail))
    rules.append(RuleResult("quality", master.quality == MasterQuality.GOOD,
                            master.quality if master.quality == MasterQuality.GOOD
                            else f"marked {master.quality}: {master.quality_reason or ''}"))
    rules.append(RuleResult("current", master.superseded_by_id is None,
                            "newest version" if master.superseded_by_id is None
                            else f"superseded by master {master.superseded_by_id}"))
    rules.append(_validity(at, master, policy.validity_days.get(kind, 30.0)))
    rules.append(_fence_rule(frame, master, at, fences))
    if live:
        ok = master.last_obs <= frame.obs_time
        rules.append(RuleResult("earlier", ok, f"inputs end {master.last_obs}, frame at "
                                               f"{frame.obs_time}"))
    return Candidate(master=master, rules=tuple(rules), distance=abs(at - master.mid_time))


def _nearest_side(session: Session, frame: Frame, kind: str, profile: InstrumentProfile,
                  policy: CalibrationPolicy, shape: Shape, params: dict[str, Any], *,
                  before: bool, live: bool, fences: Sequence[Fence],
                  first_page: list[Master] | None = None) -> list[Candidate]:
    """Uncertified masters on one side of ``when``, nearest first, read a page at a
    time until the first usable one and every master as near as it (a tie);
    ``first_page``: the first page, read already."""
    stmt = side_masters(shape, before)
    out: list[Candidate] = []
    best: dt.datetime | None = None
    offset = 0
    while True:
        if offset == 0 and first_page is not None:
            page = first_page
        else:
            page = list(session.scalars(stmt, params | {"offset": offset}))
        offset += len(page)
        for m in page:
            if best is not None and m.mid_time != best:
                return out
            cand = evaluate(frame, m, kind, profile, policy, at=params["when"], live=live,
                            fences=fences)
            out.append(cand)
            if best is None and cand.usable:
                best = m.mid_time
        if len(page) < PAGE:
            return out


def _nearest(session: Session, frame: Frame, kind: str, profile: InstrumentProfile,
             policy: CalibrationPolicy, when: dt.datetime, live: bool,
             fences: Sequence[Fence], first: FirstPages | None = None) -> list[Candidate]:
    """The candidates that can win: on each side of the frame's time, the masters
    up to the nearest usable one (and its ties), from the (kind, instrument,
    mid_time) index; and every master certified over the frame's time
    (:mod:`~nightlog.calibration.candidate_masters`).

    Every master nearer than the first usable one on a side is read, so the
    choice equals the one made over all masters. ``first``: the first pages and the
    certified masters, read already for all kinds at once
    (:func:`~nightlog.calibration.candidate_masters.first_pages`).
    """
    shape, params = scope_params(frame, kind, profile, policy, when, live)
    found = [*_nearest_side(session, frame, kind, profile, policy, shape, params,
                            before=True, live=live, fences=fences,
                            first_page=None if first is None else first[BEFORE]),
             *_nearest_side(session, frame, kind, profile, policy, shape, params,
                            before=False, live=live, fences=fences,
                            first_page=None if first is None else first[AFTER])]
    certified = (session.scalars(certified_masters(shape), params) if first is None
                 else first[CERTIFIED])
    found += [evaluate(frame, m, kind, profile, policy, at=when, live=live, fences=fences)
              for m in certified]
    return found


def _order(frame: Frame) -> Any:
    def key(c: Candidate) -> Any:
        return (c.distance, c.master.night != frame.night, -c.master.n_frames,
                -c.master.version, -c.master.id)

    return key


def match_kind(session: Session, frame: Frame, kind: str, profile: InstrumentProfile,
               policy: CalibrationPolicy, *, at: dt.datetime | None = None,
               live: bool = False, explain: bool = False,
               allow_pair: bool = True, fences: Sequence[Fence] | None = None,
               first: FirstPages | None = None) -> KindMatch:
    """Choose the ``kind`` master for ``frame``.

    With ``explain`` every master of that kind and instrument is a candidate (so a
    user sees why each failed); otherwise only the masters nearest in time that can
    be valid are read (see :func:`_nearest`), which keeps matching fast on
    catalogues of years. The choice is the same either way. A dark of a profile
    that interpolates darks reads every candidate (it needs masters of several
    exposures); with ``allow_pair`` false (a flat's build) only a dark of the
    frame's exposure is taken (:mod:`~nightlog.calibration.dark_exposure`).
    ``fences`` are those of the frame's instrument (:func:`fences_for`), when the
    caller has read them already; ``first``, the first candidates, likewise.
    """
    when = at or frame.obs_time
    if kind == "dark" and profile.dark_scaling == "interpolate":
        explain = True
    if fences is None:
        fences = fences_for(session, frame.instrument)
    if explain:
        stmt = select(Master).where(Master.kind == kind, Master.profile == profile.name)
        if frame.instrument is not None:
            stmt = stmt.where(Master.instrument == frame.instrument)
        candidates = [evaluate(frame, m, kind, profile, policy, at=when, live=live,
                               fences=fences)
                      for m in session.scalars(stmt.order_by(Master.id))]
    else:
        candidates = _nearest(session, frame, kind, profile, policy, when, live, fences,
                              first)
        if not any(c.usable for c in candidates):
            # Nothing to choose: read every master so the reason names what failed.
            return match_kind(session, frame, kind, profile, policy, at=at, live=live,
                              explain=True, fences=fences)
    usable = [c for c in candidates if c.usable]
    usable.sort(key=_order(frame))
    candidates.sort(key=lambda c: (not c.usable, c.distance, c.master.id))
    if kind != "dark":
        return KindMatch(kind=kind, chosen=usable[0].master if usable else None,
                         candidates=tuple(candidates))
    if profile.dark_scaling == "linear" and not usable and frame.kind == "science" \
            and profile.dark_temperature_scaling != "off":
        chosen, scaling, why = scale_across_temperature(session, frame, profile, candidates,
                                                        _order(frame))
        how = "" if scaling is None else f"{how_linear(frame)}; {scaling.describe()}"
        return KindMatch(kind=kind, chosen=chosen, candidates=tuple(candidates), how=how,
                         note=why, temperature=scaling)
    if profile.dark_scaling == "linear":
        return KindMatch(kind=kind, chosen=usable[0].master if usable else None,
                         candidates=tuple(candidates), how=how_linear(frame) if usable else "")
    choice = choose_dark(usable, frame, profile.dark_scaling, policy.dark_exptime_tolerance,
                         allow_pair=allow_pair, order=_order(frame))
    return KindMatch(kind=kind, chosen=choice.chosen, candidates=tuple(candidates),
                     second=choice.second, how=choice.how,
                     note=choice.reason if usable else "")


def match_frame(session: Session, frame: Frame, profile: InstrumentProfile,
                policy: CalibrationPolicy, *, at: dt.datetime | None = None,
                live: bool = False, explain: bool = False,
                illumination: bool = True) -> dict[str, KindMatch]:
    """The choice for every calibration ``frame`` needs, by kind (the fences of its
    instrument read once for all of them); for a science frame of a profile with
    ``illumination = "night-sky"`` (unless ``illumination`` is false) also its
    illumination model
    (:func:`~nightlog.calibration.illumination_match.match_illumination`)."""
    needs = CALIBRATION_NEEDS.get(frame.kind, ())
    fences = fences_for(session, frame.instrument) if needs else []
    # The kinds matched among the nearest masters read their first candidates in one
    # statement (a round trip each was most of a match's time on PostgreSQL).
    nearest = [] if explain else [
        kind for kind in needs
        if not (kind == "dark" and profile.dark_scaling == "interpolate")]
    first = (first_pages(session, frame, nearest, profile, policy, at or frame.obs_time,
                          live) if nearest else {})
    matches = {kind: match_kind(session, frame, kind, profile, policy, at=at, live=live,
                                explain=explain, fences=fences, first=first.get(kind))
               for kind in needs}
    if illumination and frame.kind == "science" and profile.illumination == "night-sky":
        # Imported here: that module builds on this one's rules.
        from nightlog.calibration.illumination_match import match_illumination
        flat = matches.get("flat")
        matches["illumination"] = match_illumination(
            session, frame, profile, policy, flat=None if flat is None else flat.chosen,
            at=at, live=live)
    return matches
