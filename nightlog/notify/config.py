"""``[notify]``: where events are sent.

::

    [[notify.webhooks]]
    url = "https://chat.example.org/hooks/nightlog"
    events = ["alarm", "quarantined", "daemon-stopped"]   # default: every event
    timeout = 5          # seconds for one POST (connect and answer)
    retries = 2          # further tries after a failure, 1 s, 2 s, ... apart

    [notify.smtp]        # optional: the same events by e-mail, through a relay
    host = "localhost"
    port = 25
    sender = "nightlog@observatory.example"
    to = ["night-staff@observatory.example"]
    events = ["alarm", "daemon-failing"]                  # default: every event
    timeout = 10
    retries = 2
    starttls = false
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightlog.errors import ConfigurationError
from nightlog.notify.mail import Mail
from nightlog.settings_keys import SECTION_KEYS, refuse_unknown

__all__ = ["EVENTS", "SMTP_KEYS", "WEBHOOK_KEYS", "NotifySettings", "Webhook", "notify_from"]

#: Every event a webhook can ask for.
EVENTS: tuple[str, ...] = ("alarm", "quarantined", "no-master", "morning-summary",
                           "daemon-stopped", "daemon-failing")
WEBHOOK_KEYS: tuple[str, ...] = ("url", "events", "timeout", "retries")
SMTP_KEYS: tuple[str, ...] = ("host", "port", "sender", "to", "events", "timeout", "retries",
                              "starttls")


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
    """The configured webhooks and mail relay (none: nothing is sent, the outbox only
    fills)."""

    webhooks: tuple[Webhook, ...] = ()
    mail: Mail | None = None

    @property
    def any(self) -> bool:
        """Whether anything is configured to send to."""
        return bool(self.webhooks) or self.mail is not None


def _events(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    events = table.get("events", list(EVENTS))
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ConfigurationError(f"{where}.events must be a list of event names")
    for event in events:
        if event not in EVENTS:
            raise ConfigurationError(f"{where}.events: unknown event {event!r}; known: "
                                     f"{', '.join(EVENTS)}")
    return tuple(events)


def _timeout_retries(table: Mapping[str, Any], where: str, timeout: float
                     ) -> tuple[float, int]:
    timeout = table.get("timeout", timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            0 < timeout <= 300):
        raise ConfigurationError(f"{where}.timeout must be seconds in (0, 300], "
                                 f"not {timeout!r}")
    retries = table.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigurationError(f"{where}.retries must be a whole number in 0..10, "
                                 f"not {retries!r}")
    return float(timeout), retries


def _webhook(i: int, table: Any) -> Webhook:
    where = f"notify.webhooks[{i}]"
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where} must be a table ([[notify.webhooks]])")
    refuse_unknown(table, WEBHOOK_KEYS, where)
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where}.url must be an http:// or https:// URL, "
                                 f"not {url!r}")
    timeout, retries = _timeout_retries(table, where, 5.0)
    return Webhook(url=url, events=_events(table, where), timeout=timeout, retries=retries)


def _mail(table: Any) -> Mail:
    where = "[notify.smtp]"
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where} must be a table")
    refuse_unknown(table, SMTP_KEYS, where)
    host, sender, to = table.get("host"), table.get("sender"), table.get("to")
    if not isinstance(host, str) or not host:
        raise ConfigurationError(f"{where} host must name the mail relay")
    if not isinstance(sender, str) or "@" not in sender:
        raise ConfigurationError(f"{where} sender must be an address, not {sender!r}")
    if (not isinstance(to, list) or not to
            or not all(isinstance(a, str) and "@" in a for a in to)):
        raise ConfigurationError(f"{where} to must be a list of addresses")
    port = table.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigurationError(f"{where} port must be a TCP port, not {port!r}")
    starttls = table.get("starttls", False)
    if not isinstance(starttls, bool):
        raise ConfigurationError(f"{where} starttls must be true or false")
    timeout, retries = _timeout_retries(table, "notify.smtp", 10.0)
    return Mail(host=host, sender=sender, to=tuple(to), events=_events(table, "notify.smtp"),
                port=port, timeout=timeout, retries=retries, starttls=starttls)


def notify_from(table: Mapping[str, Any]) -> NotifySettings:
    """Parse ``[notify]`` (unknown keys refused)."""
    refuse_unknown(table, SECTION_KEYS["notify"], "[notify]")
    hooks = table.get("webhooks", [])
    if not isinstance(hooks, list):
        raise ConfigurationError("notify.webhooks must be an array of tables "
                                 "([[notify.webhooks]])")
    return NotifySettings(webhooks=tuple(_webhook(i, t) for i, t in enumerate(hooks)),
                          mail=_mail(table["smtp"]) if "smtp" in table else None)
