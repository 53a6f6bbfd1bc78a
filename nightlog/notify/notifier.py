"""The notifier: a background thread that sends the outbox to the webhooks.

It never runs on the ingestion path. The daemon's loop only adds rows to the
outbox (inside its own transactions) and calls :meth:`Notifier.wake`; this
thread reads the pending rows in a short session, closes it, POSTs each row to
every webhook that wants its event (:func:`~.webhook.post_event`, with the
webhook's timeout and retries) and the mail relay (:func:`~.mail.send_mail`),
then records the answers in another short transaction. A webhook that is down or
hangs costs this thread its timeouts, never the daemon a moment.

Events that cannot be written to the catalogue (the daemon failing *because*
the catalogue is unreachable) go through :meth:`Notifier.send_direct`: a
bounded in-memory queue drained by the same thread (the oldest is dropped,
with a warning, when it is full).

:func:`deliver_pending` is the same work done once, in the caller's thread
(``nightlog notify``).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.outbox import finish_delivery, pending_notifications
from nightlog.notify.config import NotifySettings
from nightlog.notify.mail import send_mail
from nightlog.notify.webhook import Delivery, post_event
from nightlog.states import NoticeState

__all__ = ["DeliveryReport", "Notifier", "deliver_pending"]

log = logging.getLogger("nightlog.notify")


@dataclass(frozen=True, slots=True)
class _Pending:
    id: int
    event: str
    envelope: dict[str, Any]
    done: frozenset[str]


@dataclass(slots=True)
class DeliveryReport:
    """What one pass did: rows sent, rows failed, rows left pending."""

    sent: int = 0
    failed: int = 0
    pending: int = 0


def _envelope(row: Any) -> dict[str, Any]:
    payload = dict(row.payload or {})
    return {"event": row.event, "id": row.id, "created_at": row.created_at.isoformat(),
            "text": payload.pop("text", row.event), "payload": payload}


_Send = Callable[[Mapping[str, Any], Callable[[float], None]], Delivery]


def _targets(settings: NotifySettings) -> list[tuple[str, Callable[[str], bool], _Send]]:
    """Every place events go: (its key in ``deliveries``, which events, how to send)."""
    out: list[tuple[str, Callable[[str], bool], _Send]] = []
    for hook in settings.webhooks:
        out.append((hook.url, hook.wants,
                    lambda env, sleep, h=hook: post_event(h, env, sleep=sleep)))
    if settings.mail is not None:
        mail = settings.mail
        out.append((mail.key, mail.wants,
                    lambda env, sleep: send_mail(mail, env, sleep=sleep)))
    return out


def deliver_pending(engine: Engine, settings: NotifySettings, *,
                    sleep: Callable[[float], None] = time.sleep,
                    deadline: float | None = None, limit: int = 50) -> DeliveryReport:
    """Send the pending outbox rows once (oldest first); record each webhook's answer.

    A row no webhook wants is marked sent at once (nothing to deliver). A row is
    ``failed`` when some webhook gave up on it after its retries (its error is in
    ``deliveries``), ``sent`` when all took it. ``deadline`` (``time.monotonic``)
    leaves the rest pending for the next pass.
    """
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        rows = [_Pending(r.id, r.event, _envelope(r),
                         frozenset(u for u, v in (r.deliveries or {}).items() if v == "sent"))
                for r in pending_notifications(session, limit=limit)]
    report = DeliveryReport()
    for row in rows:
        if deadline is not None and time.monotonic() > deadline:
            report.pending += 1
            continue
        answers: dict[str, str] = {}
        for key, wants, send in _targets(settings):
            if wants(row.event) and key not in row.done:
                answers[key] = send(row.envelope, sleep).verdict
        state = (NoticeState.SENT if all(v == "sent" for v in answers.values())
                 else NoticeState.FAILED)
        for url, verdict in answers.items():
            if verdict != "sent":
                log.warning("webhook %s refused %s %d: %s", url, row.event, row.id, verdict,
                            extra={"event": "notify-failed", "url": url})
        with sessions() as session, session.begin():
            finish_delivery(session, row.id, answers, state)
        if state == NoticeState.SENT:
            report.sent += 1
        else:
            report.failed += 1
    return report


class Notifier:
    """The background sender of one process (a watch daemon).

    Parameters
    ----------
    engine : Engine
        The catalogue holding the outbox.
    settings : NotifySettings
        The webhooks and mail relay; with none, the thread is not started and rows
        stay pending (``nightlog notify`` sends them once something is configured).
    interval : float
        Seconds between passes when not woken.
    """

    def __init__(self, engine: Engine, settings: NotifySettings, *, interval: float = 5.0,
                 queue_size: int = 100) -> None:
        self.engine, self.settings, self.interval = engine, settings, interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._direct: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._deadline: float | None = None
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return self.settings.any

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="nightlog-notifier",
                                            daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Ask for a pass now (new rows were committed). Returns at once."""
        self._wake.set()

    def send_direct(self, event: str, text: str, payload: Mapping[str, Any]) -> None:
        """Send an event that is not in the catalogue; returns at once."""
        if not self.enabled:
            return
        envelope = {"event": event, "id": None,
                    "created_at": dt.datetime.now(dt.UTC).isoformat(), "text": text,
                    "payload": dict(payload)}
        while True:
            try:
                self._direct.put_nowait(envelope)
                break
            except queue.Full:
                try:
                    dropped = self._direct.get_nowait()
                    log.warning("notification queue full; dropped %s", dropped["event"],
                                extra={"event": "notify-dropped"})
                except queue.Empty:
                    pass
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """A last pass (at most ``timeout`` seconds), then end the thread."""
        if self._thread is None:
            return
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout + 1.0)
        self._thread = None

    def _pass(self) -> None:
        while True:
            try:
                envelope = self._direct.get_nowait()
            except queue.Empty:
                break
            for _key, wants, send in _targets(self.settings):
                if wants(envelope["event"]):
                    ok = send(envelope, time.sleep).ok
                    self.sent, self.failed = self.sent + ok, self.failed + (not ok)
        try:
            report = deliver_pending(self.engine, self.settings, deadline=self._deadline)
        except SQLAlchemyError as exc:  # the catalogue away: the rows wait
            log.warning("outbox not read: %s", type(exc).__name__,
                        extra={"event": "notify-outbox-unreachable"})
            return
        self.sent += report.sent
        self.failed += report.failed

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            # A stop asked during a pass gets a pass of its own (what was queued last).
            stopping = self._stop.is_set()
            try:
                self._pass()
            except Exception:  # never let the sender die silently
                log.exception("notifier pass failed", extra={"event": "notify-error"})
            if stopping:
                return
