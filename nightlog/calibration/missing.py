"""What a missing calibration does, per camera and kind: the profile's policy.

A profile says per kind (``bias``, ``dark``, ``flat``)

- ``missing``: ``reduce-without``, ``hold`` or ``fail``
  (:class:`~nightlog.states.MissingPolicy`), what reducing a frame does when no
  master of that kind matches it;
- ``fallback_nights``: a group with too few frames on its night is combined with
  the same group's frames of the neighbouring nights within that many nights, into
  a master flagged *multi-night*;
- ``provisional_min_frames``: a group with fewer than ``min_frames`` frames but at
  least this many gives a master flagged *provisional* (its uncertainty, larger for
  fewer frames, is carried into the products).

A kind the profile does not decide follows the installation's ``[calibration]
on_missing`` (whose older words ``stop`` and ``skip`` mean ``fail`` and
``reduce-without``).
"""

from __future__ import annotations

from nightlog.calibration.policy import CalibrationPolicy
from nightlog.header.profiles import InstrumentProfile
from nightlog.states import MissingPolicy

__all__ = ["fallback_nights", "missing_policy", "provisional_minimum"]

_OLD_WORDS = {"stop": MissingPolicy.FAIL, "skip": MissingPolicy.REDUCE_WITHOUT}


def missing_policy(profile: InstrumentProfile, policy: CalibrationPolicy, kind: str
                   ) -> MissingPolicy:
    """What reducing a frame of ``profile`` does without a ``kind`` master."""
    chosen = profile.missing.get(kind)
    if chosen is not None:
        return MissingPolicy(chosen)
    site = policy.on_missing.get(kind, "skip")
    return _OLD_WORDS.get(site) or MissingPolicy(site)


def fallback_nights(profile: InstrumentProfile, kind: str) -> int:
    """Nights either side whose frames may complete a ``kind`` group (0: none)."""
    return int(profile.fallback_nights.get(kind, 0))


def provisional_minimum(profile: InstrumentProfile, kind: str) -> int | None:
    """Fewest frames of a provisional ``kind`` master, or ``None`` (never provisional).

    ``None`` too when it is not below ``min_frames`` (a full master needs no flag).
    """
    value = profile.provisional_min_frames.get(kind)
    if value is None or value >= profile.min_frames.get(kind, 5):
        return None
    return int(value)
