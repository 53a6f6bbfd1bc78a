"""Instrument profiles: how each camera's raw headers are read, kept as data.

A profile is a TOML table; built-ins ship in ``builtin/`` and users add or override
them in ``[instruments.<name>]`` tables of ``nightlog.toml``. See ``docs/profiles.md``.
"""

from nightlog.header.profiles.match_rule import MatchRule
from nightlog.header.profiles.model import InstrumentProfile
from nightlog.header.profiles.registry import (
    FALLBACK_PROFILE,
    ProfileRegistry,
    builtin_profile_names,
)
from nightlog.header.profiles.tables import KNOWN_KEYS

__all__ = [
    "FALLBACK_PROFILE",
    "KNOWN_KEYS",
    "InstrumentProfile",
    "MatchRule",
    "ProfileRegistry",
    "builtin_profile_names",
]
