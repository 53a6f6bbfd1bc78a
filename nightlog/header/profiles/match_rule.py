"""How a profile claims a header: one condition on one keyword, exact or regex.

A profile's ``match`` (exact values) and ``match_regex`` (patterns) tables become
:class:`MatchRule` values (:mod:`nightlog.header.profiles.tables`); the registry
picks the profile all of whose rules hold (:mod:`nightlog.header.profiles.registry`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MatchRule"]


@dataclass(frozen=True, slots=True)
class MatchRule:
    """One condition on a header keyword.

    The header value is stripped and compared case-insensitively: equal to one of
    ``values`` (exact rule) or found by ``re.search`` (regex rule).
    """

    keyword: str
    values: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    @property
    def is_exact(self) -> bool:
        return self.pattern is None

    def accepts(self, text: str | None) -> bool:
        """Whether the (already stripped) header text satisfies this rule."""
        if text is None:
            return False
        if self.pattern is not None:
            return self.pattern.search(text) is not None
        folded = text.casefold()
        return any(folded == v.casefold() for v in self.values)
