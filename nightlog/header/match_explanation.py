"""Why a header got its instrument profile: every profile's rules, held or not.

:meth:`ProfileRegistry.match <nightlog.header.profiles.ProfileRegistry.match>` picks
the profile; :func:`explain_profile_match` says why, for ``nightlog profile check``: each
rule of each profile with the header's value and its verdict, the specificity of
every profile whose rules all hold, and whether the fallback (or the configured
``ingest.default_profile``) was used because none did. It is pure: a header
mapping and a registry in, a description out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightlog.header.profiles import FALLBACK_PROFILE, MatchRule, ProfileRegistry
from nightlog.header.values import HeaderView, text_value

__all__ = ["MatchExplanation", "ProfileVerdict", "RuleVerdict", "explain_profile_match"]


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One match rule against the header: ``KEYWORD = "text"`` or ``KEYWORD ~ regex``,
    the header's stripped value (``None``: absent) and whether it holds."""

    keyword: str
    expected: str
    value: str | None
    holds: bool

    def describe(self) -> str:
        """``INSTRUME='LFC' = 'LFC': holds`` or ``... : absent`` / ``: fails``."""
        shown = "absent" if self.value is None else repr(self.value)
        verdict = "holds" if self.holds else "fails"
        return f"{self.keyword}={shown} {self.expected}: {verdict}"


@dataclass(frozen=True, slots=True)
class ProfileVerdict:
    """A profile with match rules: each rule's verdict, whether all hold, and its
    specificity ``(priority, rules, exact rules)`` (the larger wins)."""

    profile: str
    rules: tuple[RuleVerdict, ...]
    score: tuple[int, int, int]

    @property
    def matches(self) -> bool:
        return all(rule.holds for rule in self.rules)


@dataclass(frozen=True, slots=True)
class MatchExplanation:
    """The profile chosen for a header, and why.

    Attributes
    ----------
    chosen : str
        The profile ingestion uses.
    reason : str
        One sentence: which rules held, what it won over, or that nothing matched.
    fallback : bool
        No profile's rules held: ``generic`` (or ``default_profile``) is used.
    verdicts : tuple of ProfileVerdict
        Every profile that has match rules, in name order.
    """

    chosen: str
    reason: str
    fallback: bool
    verdicts: tuple[ProfileVerdict, ...]


def _expected(rule: MatchRule) -> str:
    if rule.pattern is not None:
        return f"~ /{rule.pattern.pattern}/"
    if len(rule.values) == 1:
        return f"= {rule.values[0]!r}"
    return "in [" + ", ".join(repr(v) for v in rule.values) + "]"


def _verdict(name: str, rules: tuple[MatchRule, ...], priority: int,
             view: HeaderView) -> ProfileVerdict:
    verdicts = []
    for rule in rules:
        value = text_value(view.get(rule.keyword))
        verdicts.append(RuleVerdict(rule.keyword, _expected(rule), value, rule.accepts(value)))
    score = (priority, len(rules), sum(rule.is_exact for rule in rules))
    return ProfileVerdict(name, tuple(verdicts), score)


def _lost_by(score: tuple[int, int, int], best: tuple[int, int, int]) -> str:
    for mine, theirs, what in zip(score, best, ("lower priority", "fewer rules",
                                                "fewer exact rules"), strict=True):
        if mine < theirs:
            return what
    return "as specific, but later in name order"


def explain_profile_match(registry: ProfileRegistry, header: Mapping[str, Any], *,
                  default_profile: str | None = None) -> MatchExplanation:
    """Which profile ``header`` gets and why, as ingestion chooses it.

    Parameters
    ----------
    registry : ProfileRegistry
        The installation's profiles.
    header : mapping
        The raw header (astropy header or ``{KEYWORD: value}``); not modified.
    default_profile : str, optional
        ``ingest.default_profile``: used instead of ``generic`` when no profile's
        rules hold.

    Returns
    -------
    MatchExplanation
        ``chosen`` is ``registry.match(header)``'s choice (or ``default_profile``).
    """
    view = HeaderView(header)
    verdicts = tuple(_verdict(name, profile.match, profile.priority, view)
                     for name in registry.names
                     if (profile := registry.get(name)).match)
    chosen = registry.match(header).name
    matching = [v for v in verdicts if v.matches]
    if chosen == FALLBACK_PROFILE and not matching:
        used = default_profile or FALLBACK_PROFILE
        why = ("no profile's match rules hold"
               + (f"; ingest.default_profile is {used!r}" if default_profile else
                  f"; the fallback {FALLBACK_PROFILE!r} is used"))
        return MatchExplanation(used, why, True, verdicts)
    winner = next(v for v in verdicts if v.profile == chosen)
    held = ", ".join(f"{r.keyword}={r.value!r}" for r in winner.rules)
    why = f"its {len(winner.rules)} rule(s) hold ({held})"
    others = [v for v in matching if v.profile != chosen]
    if others:
        beaten = ", ".join(f"{v.profile} ({_lost_by(v.score, winner.score)})" for v in others)
        why += f"; more specific than {beaten}"
    return MatchExplanation(chosen, why, False, verdicts)
