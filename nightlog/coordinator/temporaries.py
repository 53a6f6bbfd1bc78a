"""Sweeping the archive's temporaries at the start of a run.

The watch daemon at start, ``nightlog reduce`` (:func:`~nightlog.coordinator.reduce.
run_reduce`) and the master build call :func:`sweep_archive`: temporaries whose
writer is gone (:mod:`nightlog.store.temporaries`) are removed, those of live runs
kept. The live runs of other hosts are the catalogue's daemon rows with a recent
heartbeat; when the catalogue cannot be asked, every temporary of another host is
kept.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nightlog.catalogue import daemons as cat_daemons
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.coordinator.context import JobContext
from nightlog.store.temporaries import SweepReport, TemporaryOwner, host_label, sweep_temporaries

__all__ = ["sweep_archive"]


def _live_runs(engine: Engine) -> set[tuple[str, int]] | None:
    try:
        with make_sessionmaker(engine)() as session:
            rows = cat_daemons.recent_daemons(session, limit=500)
            return {(host_label(r.host), r.pid) for r in rows if cat_daemons.is_alive(r)}
    except SQLAlchemyError:
        return None


def sweep_archive(engine: Engine, ctx: JobContext) -> SweepReport:
    """Remove the temporaries left under the archive root by interrupted writes.

    Parameters
    ----------
    engine : Engine
        The catalogue, asked which daemons of other hosts are alive.
    ctx : JobContext
        Its layout names the archive root.

    Returns
    -------
    SweepReport
        What was removed and what was kept, with why.
    """
    live = _live_runs(engine)

    def live_elsewhere(owner: TemporaryOwner) -> bool:
        return live is None or (owner.host, owner.pid) in live

    return sweep_temporaries(ctx.layout.root, live_elsewhere=live_elsewhere)
