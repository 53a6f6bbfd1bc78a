"""Held and stopped frames in the catalogue (``frame_holds``), and a night's problems
counted, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.holds import held_frames, holds_of_night, record_hold, resolve_hold
from nightlog.catalogue.problems import problem_counts, problem_rows
from nightlog.catalogue.reductions import record_failure
from nightlog.states import HoldState
from tests.test_catalogue import facts, norm

NIGHT = dt.date(2016, 1, 15)


def test_holds_are_recorded_listed_and_resolved(catalogue_engine: Engine) -> None:
    with make_sessionmaker(catalogue_engine)() as s, s.begin():
        frames = [cf.add_frame(s, facts(f"/r/s{i}.fits", f"s{i}"),
                               norm("science", minutes=i, filt="r", night=NIGHT),
                               software_version="t") for i in range(4)]
        s.flush()
        ids = [f.id for f in frames]
        record_hold(s, ids[0], state=HoldState.HELD, steps=["flat"], reason="no flat")
        record_hold(s, ids[1], state=HoldState.STOPPED, steps=["bias"], reason="no bias")
        record_hold(s, ids[2], state=HoldState.HELD, steps=["flat"], reason="no flat")
        record_failure(s, ids[3], kind="final", attempts=3, error="OSError", reason="gone",
                       software_version="t")
        # Held again later: one row, its reason the latest.
        record_hold(s, ids[2], state=HoldState.HELD, steps=["dark", "flat"], reason="later")
    with make_sessionmaker(catalogue_engine)() as s, s.begin():
        assert held_frames(s) == {NIGHT: [ids[0], ids[2]]}  # stopped ones wait for nobody
        listed = {h.frame_id: h for h in holds_of_night(s, NIGHT)}
        assert listed[ids[2]].steps == ("dark", "flat") and listed[ids[2]].reason == "later"
        assert listed[ids[1]].state is HoldState.STOPPED
        assert problem_counts(s, NIGHT) == {"failed": 1, "held": 2, "stopped": 1}
        assert [r["state"] for r in problem_rows(s, NIGHT)] == ["held", "stopped", "held",
                                                                "failed"]
        assert resolve_hold(s, ids[0]) and not resolve_hold(s, ids[0])
    with make_sessionmaker(catalogue_engine)() as s:
        assert held_frames(s) == {NIGHT: [ids[2]]}
        assert problem_counts(s, NIGHT) == {"failed": 1, "held": 1, "stopped": 1}
        assert problem_counts(s, NIGHT + dt.timedelta(days=1)) == {}
