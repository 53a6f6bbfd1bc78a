"""Masters read ahead: a daemon that has just built masters reads them, and finds their
bits, into its own :func:`~nightlog.coordinator.kept_masters.kept_masters` while it is
idle, so that the next quick-look finds them ready. (Apart from ``kept_masters``,
which the workers import: they never reach the catalogue.)"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Master
from nightlog.coordinator.kept_masters import PLANE_ROLES, kept_masters
from nightlog.coordinator.reduce_plan import mask_thresholds
from nightlog.errors import UnreadableFileError
from nightlog.header.profiles import ProfileRegistry
from nightlog.reduction.science_parameters import ScienceParameters

__all__ = ["keep_built_masters"]


def keep_built_masters(session: Session, registry: ProfileRegistry,
                       master_ids: Sequence[int]) -> int:
    """Read masters just built into this process's :func:`kept_masters`, and find their
    bits with their profile's thresholds, so that the next frame reduced here (a
    daemon's quick-look) finds them ready.

    Parameters
    ----------
    session : Session
        Reads the masters' rows (nothing is written).
    registry : ProfileRegistry
        The profiles the masters were built with.
    master_ids : sequence of int
        The masters.

    Returns
    -------
    int
        Masters kept (a master whose file or profile is gone is left out).
    """
    kept = kept_masters()
    done = 0
    for master in session.scalars(select(Master).where(Master.id.in_(master_ids))):
        if master.kind not in PLANE_ROLES or master.profile not in registry.names:
            continue
        profile = registry.get(master.profile)
        # Gain and read noise do not enter the bits: only the thresholds are used.
        thresholds = ScienceParameters(gain=1.0, read_noise=0.0, saturation=None,
                                       **mask_thresholds(profile))
        try:
            kept.warm([(master.kind, master.path)], thresholds)
        except UnreadableFileError:
            continue
        done += 1
    return done
