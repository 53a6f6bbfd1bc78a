"""Exposure times a shutter's jitter spreads, counted as one group.

The 70.0 s and 70.1 s flats of one sequence are one group of 70 s, while 7 s and
70 s stay apart: times are cut where one is more than a relative tolerance (at
least 0.05 s) above the first of its group. ``nightlog nights`` groups each
night's times this way, and each month's or year's for its summaries.
"""

from __future__ import annotations

__all__ = ["exposure_groups", "group_median"]


def exposure_groups(times: list[tuple[float, int]], tolerance: float
                    ) -> list[list[tuple[float, int]]]:
    """Exposure times (seconds, with their frame counts), sorted, cut where one is
    more than ``tolerance`` (relative, at least 0.05 s) above its group's first."""
    groups: list[list[tuple[float, int]]] = []
    for value, count in sorted(times):
        if groups and value - groups[-1][0][0] <= max(tolerance * groups[-1][0][0], 0.05):
            groups[-1].append((value, count))
        else:
            groups.append([(value, count)])
    return groups


def group_median(group: list[tuple[float, int]]) -> float:
    """The median exposure (seconds, to 0.1 s) of a group's frames, each time
    weighted by its count."""
    total = sum(n for _, n in group)
    middle = total // 2
    seen = 0
    below = None
    for value, n in group:
        if total % 2 == 0 and below is None and seen + n >= middle:
            below = value  # the frame at position middle - 1 (0-based)
        seen += n
        if seen > middle:
            value_at = value
            break
    if total % 2:
        return round(value_at, 1)
    assert below is not None
    return round((below + value_at) / 2, 1)
