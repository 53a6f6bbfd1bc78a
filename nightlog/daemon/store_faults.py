"""Riding out an archive that cannot be written for a while.

A read-only remount, a full disk or a folder whose permissions were changed makes
master builds and quick-looks fail with a :class:`~nightlog.errors.StoreError`
(:class:`~nightlog.errors.ArchiveNotWritable`, which the outcome carries as its
cause :attr:`~nightlog.states.FailureCause.ARCHIVE`). Those failures say nothing
about the frames: once the archive is writable again the same work succeeds. The daemon
keeps one :class:`StoreBackoff`: after such a failure the builds and quick-looks
wait ``first``, 2×, 4×… seconds (at most ``cap``: the catalogue outage's backoff)
and are tried again, and the first success after a fault is logged ("archive
writable again").
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["StoreBackoff"]

log = logging.getLogger("nightlog.watch")

class StoreBackoff:
    """When builds and quick-looks that failed on the store are tried again.

    Parameters
    ----------
    first, cap : float
        First pause and longest pause, in seconds.
    clock : callable
        Seconds (the daemon's clock).
    """

    def __init__(self, first: float, cap: float, clock: Callable[[], float]) -> None:
        self.first = first
        self.cap = cap
        self._clock = clock
        self._delay = first
        self.failures = 0  # since the archive was last writable
        self.retry_at: float | None = None

    @property
    def waiting(self) -> bool:
        """Whether a retry is pending and not yet due."""
        return self.retry_at is not None and self._clock() < self.retry_at

    def failed(self, what: str, reason: str) -> None:
        """``what`` failed on the store: wait, longer each time."""
        self.failures += 1
        self.retry_at = self._clock() + self._delay
        log.warning("archive not writable (attempt %d, %s retried in %.1f s): %s",
                    self.failures, what, self._delay, reason,
                    extra={"event": "store-retry", "attempt": self.failures,
                           "delay": self._delay, "reason": reason})
        self._delay = min(self.cap, self._delay * 2)

    def succeeded(self) -> None:
        """A write went through: if the archive was failing, say it is back."""
        if self.failures:
            log.info("archive writable again after %d failed attempt(s)", self.failures,
                     extra={"event": "store-recovered", "attempts": self.failures})
        self.failures = 0
        self._delay = self.first
        self.retry_at = None

    def wait_left(self) -> float:
        """Seconds until the pending retry (0 when none is pending)."""
        if self.retry_at is None:
            return 0.0
        return max(0.0, self.retry_at - self._clock())
