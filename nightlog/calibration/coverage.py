"""The coverage plan: tonight's set-ups against the masters that would serve them.

For each set-up of the night's science frames (and each set-up announced in a
file), every calibration it needs is matched exactly as the reduction would
(:func:`~nightlog.calibration.matching.match_kind`) and said to be

``exact``
    served by a master of the night itself;
``other-night``
    served by a master of another night, within the policy's validity window
    (and on the same side of every fence);
``scale-only``
    a dark served by a dark rate none of whose darks had the frame's exposure
    time, within the policy's ``dark_exptime_tolerance`` (the rate is scaled to
    it: right for a linear dark current, untested at that exposure);
``missing``
    served by none (the reason names the rules that failed).

The dawn to-do lists what to take before the night is over: for each missing
master its group's minimum number of frames ("take 5 B flats", "take 5 darks
at 120 s", "take 5 biases"), and for a scale-only dark the darks at the
missing exposure time.

Announced set-ups (``--announced FILE``, TOML)::

    [[setup]]
    like = 1234          # a frame to start from (default: the latest science frame)
    filter = "B"
    exptime = 120.0

with any of ``instrument`` (to choose the latest frame of that instrument),
``filter``, ``exptime``, ``binning``, ``readout_mode``, ``set_temp``.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session

from nightlog.calibration.grouping import CALIBRATION_NEEDS
from nightlog.calibration.matching import KindMatch, match_kind
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue.models import Frame
from nightlog.catalogue.setups import (
    ANNOUNCED_FIELDS,
    NightSetup,
    announced_frame,
    input_exptimes,
    setups_of_night,
)
from nightlog.errors import ConfigurationError
from nightlog.header.profiles import InstrumentProfile
from nightlog.settings_keys import refuse_unknown
from nightlog.states import Coverage

__all__ = ["CoveragePlan", "CoverageRow", "coverage_plan", "read_announced"]

_ANNOUNCED_KEYS = ("like", "instrument", *ANNOUNCED_FIELDS)


class PlanContext(Protocol):
    """Profiles and policy (a :class:`~nightlog.coordinator.context.JobContext`)."""

    @property
    def policy(self) -> CalibrationPolicy: ...

    def profile_of(self, frame: Frame) -> InstrumentProfile: ...


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One calibration of one set-up, and how it would be served."""

    setup: str
    instrument: str | None
    filter: str | None
    exptime: float | None
    n_frames: int
    announced: bool
    kind: str
    coverage: Coverage
    master: int | None
    master_night: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"setup": self.setup, "instrument": self.instrument, "filter": self.filter,
                "exptime": self.exptime, "frames": self.n_frames,
                "announced": self.announced, "kind": self.kind,
                "coverage": str(self.coverage), "master": self.master,
                "master_night": self.master_night, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class CoveragePlan:
    """The night's set-ups, how each calibration would be served, and the to-do."""

    night: dt.date
    rows: list[CoverageRow] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[CoverageRow]:
        return [r for r in self.rows if r.coverage == Coverage.MISSING]

    def as_dict(self) -> dict[str, Any]:
        return {"night": self.night.isoformat(), "setups": [r.as_dict() for r in self.rows],
                "todo": list(self.todo)}


def read_announced(path: Path) -> list[dict[str, Any]]:
    """The ``[[setup]]`` entries of an announced-set-ups file (see the module notes).

    Raises
    ------
    ConfigurationError
        Unreadable, not TOML, not a list of ``[[setup]]`` tables, or an unknown key.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    refuse_unknown(data, ("setup",), str(path), noun="table")
    entries = data.get("setup", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigurationError(f"{path}: set-ups are [[setup]] tables")
    for i, entry in enumerate(entries):
        refuse_unknown(entry, _ANNOUNCED_KEYS, f"{path}: setup {i + 1}")
        exptime = entry.get("exptime")
        if exptime is not None and (isinstance(exptime, bool)
                                    or not isinstance(exptime, int | float) or exptime < 0):
            raise ConfigurationError(f"{path}: setup {i + 1}: exptime must be seconds >= 0")
    return entries


def _classify(session: Session, frame: Frame, kind: str, m: KindMatch, night: dt.date,
              tolerance: float) -> tuple[Coverage, str]:
    chosen = m.chosen
    if chosen is None:
        return Coverage.MISSING, m.reason
    if kind == "dark" and chosen.is_rate and frame.exptime:
        have = input_exptimes(session, chosen.id)
        want = float(frame.exptime)
        if not any(abs(t - want) <= tolerance * want for t in have):
            times = ", ".join(f"{t:.4g}" for t in sorted({round(t, 1) for t in have}))
            return Coverage.SCALE_ONLY, (f"dark rate of master {chosen.id} scaled to "
                                         f"{want:.4g} s (its darks: {times or 'none'} s)")
    if chosen.night == night:
        return Coverage.EXACT, f"master {chosen.id} of this night"
    days = abs((chosen.night - night).days)
    return Coverage.OTHER_NIGHT, f"master {chosen.id} of {chosen.night} ({days} d away)"


def _todo(frame: Frame, kind: str, coverage: Coverage, profile: InstrumentProfile
          ) -> str | None:
    n = int(profile.min_frames.get(kind, 5))
    if coverage == Coverage.MISSING:
        if kind == "flat":
            return f"take {n} {frame.filter} flats" if frame.filter else f"take {n} flats"
        if kind == "bias":
            return f"take {n} biases"
        if kind == "dark":
            return f"take {n} darks at {frame.exptime:.4g} s" if frame.exptime else \
                f"take {n} darks"
    if coverage == Coverage.SCALE_ONLY and frame.exptime:
        return f"take {n} darks at {frame.exptime:.4g} s (now scaled from a dark rate)"
    return None


def coverage_plan(session: Session, ctx: PlanContext, night: dt.date, *,
                  announced: Sequence[Mapping[str, Any]] = ()) -> CoveragePlan:
    """Match every set-up of ``night`` (and each ``announced`` one) as the reduction
    would, and list what to take at dawn.

    Raises
    ------
    NotFoundError
        An announced set-up names a frame that does not exist.
    """
    setups = setups_of_night(session, night)
    setups += [NightSetup(frame=announced_frame(session, e, night), n_frames=0,
                          announced=True) for e in announced]
    rows: list[CoverageRow] = []
    todo: list[str] = []
    for s in setups:
        frame = s.frame
        profile = ctx.profile_of(frame)
        for kind in CALIBRATION_NEEDS.get(frame.kind, ()):
            m = match_kind(session, frame, kind, profile, ctx.policy, at=frame.obs_time)
            coverage, detail = _classify(session, frame, kind, m, night,
                                         ctx.policy.dark_exptime_tolerance)
            rows.append(CoverageRow(
                setup=frame.setup_key, instrument=frame.instrument, filter=frame.filter,
                exptime=frame.exptime, n_frames=s.n_frames, announced=s.announced, kind=kind,
                coverage=coverage, master=None if m.chosen is None else m.chosen.id,
                master_night=None if m.chosen is None else m.chosen.night.isoformat(),
                detail=detail))
            item = _todo(frame, kind, coverage, profile)
            if item is not None and item not in todo:
                todo.append(item)
    return CoveragePlan(night=night, rows=rows, todo=todo)
