"""The set of instrument profiles of an installation, and choosing one for a header.

Built-in profiles are TOML files shipped in ``nightlog/header/profiles/builtin/``, read when
a registry is built (never at import). User tables from ``[instruments.<name>]``
add profiles or, under a built-in's name, are merged over it (see
:mod:`nightlog.header.profiles.tables` for the merge rule).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from nightlog.errors import ProfileError
from nightlog.header.profiles.model import InstrumentProfile
from nightlog.header.profiles.tables import merge_tables, profile_from_table, resolve_tables
from nightlog.header.values import HeaderView, text_value

__all__ = ["FALLBACK_PROFILE", "ProfileRegistry", "builtin_profile_names"]

#: The profile used when no other matches; always present.
FALLBACK_PROFILE = "generic"
_BUILTIN_PACKAGE = "nightlog.header.profiles"
_BUILTIN_FOLDER = "builtin"


def _builtin_folder() -> Any:
    return resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_FOLDER)


def builtin_profile_names() -> list[str]:
    """Names of the profiles shipped with nightlog, sorted."""
    return sorted(entry.name.removesuffix(".toml") for entry in _builtin_folder().iterdir()
                  if entry.name.endswith(".toml"))


def _builtin_tables() -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for name in builtin_profile_names():
        text = _builtin_folder().joinpath(f"{name}.toml").read_text(encoding="utf-8")
        try:
            tables[name] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:  # a packaging mistake, not a user one
            raise ProfileError(f"built-in profile {name!r} is not valid TOML: {exc}") from exc
    return tables


class ProfileRegistry:
    """Instrument profiles by name, and the rule that picks one for a header.

    Parameters
    ----------
    profiles : mapping of str to InstrumentProfile
        Must include ``generic``, the fallback.
    """

    def __init__(self, profiles: Mapping[str, InstrumentProfile]) -> None:
        if FALLBACK_PROFILE not in profiles:
            raise ProfileError(f"a profile registry needs the {FALLBACK_PROFILE!r} profile")
        self._profiles = dict(profiles)

    @classmethod
    def from_settings(cls, instruments: Mapping[str, Mapping[str, Any]] | None = None
                      ) -> ProfileRegistry:
        """Built-in profiles plus the user's ``[instruments.<name>]`` tables.

        Parameters
        ----------
        instruments : mapping, optional
            Raw tables by profile name (``Settings.instruments``). A table named like
            a built-in is merged over it; ``extends`` names the profile to start from.

        Raises
        ------
        ProfileError
            A table is not a table, has an unknown key or a bad value, or its
            ``extends`` chain is broken.
        """
        tables = _builtin_tables()
        for name, table in (instruments or {}).items():
            if not isinstance(table, Mapping):
                raise ProfileError(f"[instruments.{name}] must be a table")
            tables[name] = merge_tables(tables.get(name, {}), table)
        resolved = resolve_tables(tables)
        return cls({name: profile_from_table(name, table) for name, table in resolved.items()})

    @property
    def names(self) -> list[str]:
        """Profile names, sorted."""
        return sorted(self._profiles)

    def get(self, name: str) -> InstrumentProfile:
        """The profile called ``name``.

        Raises
        ------
        ProfileError
            No such profile; the message lists the known ones.
        """
        try:
            return self._profiles[name]
        except KeyError:
            raise ProfileError(f"no instrument profile named {name!r}; "
                               f"known: {', '.join(self.names)}") from None

    def match(self, header: Mapping[str, Any]) -> InstrumentProfile:
        """The most specific profile whose match rules all hold for ``header``.

        Specificity is, in order: higher ``priority``, more rules, more exact (not
        regex) rules; remaining ties go to the alphabetically first name, so the
        choice never depends on file order. Profiles without rules are never picked
        here; ``generic`` is returned when nothing matches.
        """
        view = HeaderView(header)
        best: tuple[tuple[int, int, int], str] | None = None
        for name, profile in self._profiles.items():
            if not profile.match:
                continue
            if not all(rule.accepts(text_value(view.get(rule.keyword)))
                       for rule in profile.match):
                continue
            score = (profile.priority, len(profile.match),
                     sum(rule.is_exact for rule in profile.match))
            if best is None or score > best[0] or (score == best[0] and name < best[1]):
                best = (score, name)
        return self._profiles[best[1] if best else FALLBACK_PROFILE]
