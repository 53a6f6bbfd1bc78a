"""E-mail through SMTP: the same events as the webhooks, as plain-text messages.

The subject is ``[nightlog] <event>: <text>`` (cut at 150 characters); the body is the
event's text and its JSON envelope. The message goes to a relay the site runs
(``host``, ``port``), optionally upgraded with STARTTLS; no password is kept in the
configuration (a local relay does not need one). A refused connection, a timeout or
a refusal by the server is a failure, tried again like a webhook's.

The mail and network modules are imported by :func:`send_mail`: the settings hold a
:class:`Mail` for every command, and most never send one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from email.message import EmailMessage

    from nightlog.notify.webhook import Delivery

__all__ = ["Mail", "send_mail"]


@dataclass(frozen=True, slots=True)
class Mail:
    """``[notify.smtp]``: the relay, the sender, the recipients and the events."""

    host: str
    sender: str
    to: tuple[str, ...]
    events: tuple[str, ...]
    port: int = 25
    timeout: float = 10.0
    retries: int = 2
    starttls: bool = False

    @property
    def key(self) -> str:
        """How the outbox names this target in a row's ``deliveries``."""
        return f"smtp://{self.host}:{self.port}"

    def wants(self, event: str) -> bool:
        return event in self.events


def _message(mail: Mail, envelope: Mapping[str, Any]) -> EmailMessage:
    from email.message import EmailMessage

    msg = EmailMessage()
    text = str(envelope.get("text", envelope.get("event", "")))
    subject = f"[nightlog] {envelope.get('event')}: {text}"
    msg["Subject"] = subject if len(subject) <= 150 else subject[:149] + "…"
    msg["From"] = mail.sender
    msg["To"] = ", ".join(mail.to)
    msg.set_content(f"{text}\n\n{json.dumps(envelope, indent=1, default=str)}\n")
    return msg


def send_mail(mail: Mail, envelope: Mapping[str, Any], *,
              sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Send ``envelope`` as one message to every recipient, with timeout and retries.

    Never raises for a network or server problem: the result says what happened.
    """
    import smtplib
    import ssl

    from nightlog.notify.webhook import Delivery

    msg = _message(mail, envelope)
    error = ""
    for attempt in range(mail.retries + 1):
        if attempt:
            sleep(min(8.0, 2.0 ** (attempt - 1)))
        try:
            with smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout) as client:
                if mail.starttls:
                    client.starttls(context=ssl.create_default_context())
                client.send_message(msg)
            return Delivery(ok=True, tries=attempt + 1)
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    return Delivery(ok=False, tries=mail.retries + 1, error=error[:300])
