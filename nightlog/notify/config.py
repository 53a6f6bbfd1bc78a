"""``[notify]``: where events are sent.

::

    [[notify.webhooks]]
    url = "https://chat.example.org/hooks/nightlog"
    events = ["alarm", "quarantined", "daemon-stopped"]   # default: every event
    timeout = 5          # seconds for one POST (connect and answer)
    retries = 2          # further tries after a failure, 1 s, 2 s, ... apart

E-mail through SMTP is not implemented yet: a ``smtp`` key is refused as unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightlog.errors import ConfigurationError
from nightlog.settings_keys import SECTION_KEYS, refuse_unknown

__all__ = ["EVENTS", "WEBHOOK_KEYS", "NotifySettings", "Webhook", "notify_from"]

#: Every event a webhook can ask for.
EVENTS: tuple[str, ...] = ("alarm", "quarantined", "no-master", "morning-summary",
                           "daemon-stopped", "daemon-failing")
WEBHOOK_KEYS: tuple[str, ...] = ("url", "events", "timeout", "retries")


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook: its URL, the events it wants, its timeout (s) and retries."""

    url: str
    events: tuple[str, ...] = EVENTS
    timeout: float = 5.0
    retries: int = 2

    def wants(self, event: str) -> bool:
        return event in self.events


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """The configured webhooks (none: nothing is sent, the outbox only fills)."""

    webhooks: tuple[Webhook, ...] = ()


def _webhook(i: int, table: Any) -> Webhook:
    where = f"notify.webhooks[{i}]"
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where} must be a table ([[notify.webhooks]])")
    refuse_unknown(table, WEBHOOK_KEYS, where)
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where}.url must be an http:// or https:// URL, "
                                 f"not {url!r}")
    events = table.get("events", list(EVENTS))
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ConfigurationError(f"{where}.events must be a list of event names")
    for event in events:
        if event not in EVENTS:
            raise ConfigurationError(f"{where}.events: unknown event {event!r}; known: "
                                     f"{', '.join(EVENTS)}")
    timeout = table.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            0 < timeout <= 300):
        raise ConfigurationError(f"{where}.timeout must be seconds in (0, 300], "
                                 f"not {timeout!r}")
    retries = table.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigurationError(f"{where}.retries must be a whole number in 0..10, "
                                 f"not {retries!r}")
    return Webhook(url=url, events=tuple(events), timeout=float(timeout), retries=retries)


def notify_from(table: Mapping[str, Any]) -> NotifySettings:
    """Parse ``[notify]`` (unknown keys refused)."""
    refuse_unknown(table, SECTION_KEYS["notify"], "[notify]")
    hooks = table.get("webhooks", [])
    if not isinstance(hooks, list):
        raise ConfigurationError("notify.webhooks must be an array of tables "
                                 "([[notify.webhooks]])")
    return NotifySettings(webhooks=tuple(_webhook(i, t) for i, t in enumerate(hooks)))
