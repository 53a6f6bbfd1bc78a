"""Webhooks: a JSON POST to a local HTTP server, tried again after a failure, given up
on a refused port or a hanging server; the outbox's states; the [notify] settings; and
a watch daemon whose webhook hangs still ingests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.outbox import list_notifications, queue_notification
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext
from nightlog.daemon.watch import Watcher, WatchOptions
from nightlog.errors import ConfigurationError
from nightlog.notify.config import EVENTS, NotifySettings, Webhook, notify_from
from nightlog.notify.notifier import deliver_pending
from nightlog.notify.webhook import post_event
from nightlog.settings import load_settings
from tests.factories import wait_for, write_frame


@dataclass
class Receiver:
    """A local webhook: what it received, and the statuses it answers in turn."""

    url: str
    answers: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    hold: threading.Event | None = None  # set: answer; unset: hang until set
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(json.loads(body))
            state.arrived.set()
            if state.hold is not None:
                state.hold.wait(30)
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there now


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def _accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=_accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


ENVELOPE = {"event": "alarm", "id": 1, "created_at": "2026-12-01T06:00:00+00:00",
            "text": "gain left its band", "payload": {"alarm": {"metric": "gain"}}}


def test_a_failure_is_tried_again(receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    pauses: list[float] = []
    result = post_event(Webhook(receiver.url, retries=2), ENVELOPE, sleep=pauses.append)
    assert result.ok and result.tries == 3 and pauses == [1.0, 2.0]
    assert receiver.received == [ENVELOPE] * 3  # the same JSON each time


def test_retries_run_out(receiver: Receiver) -> None:
    receiver.answers = [500, 500]
    result = post_event(Webhook(receiver.url, retries=1), ENVELOPE, sleep=lambda _: None)
    assert not result.ok and result.tries == 2 and result.error == "HTTP 500"
    assert result.verdict == "failed: HTTP 500"


def test_a_refused_port_is_a_failure_not_an_exception() -> None:
    result = post_event(Webhook(_refused_url(), retries=2), ENVELOPE, sleep=lambda _: None)
    assert not result.ok and result.tries == 3
    assert "refused" in (result.error or "").lower()


def test_a_hanging_server_is_given_up_after_the_timeout(hanging_url: str) -> None:
    result = post_event(Webhook(hanging_url, timeout=0.5, retries=0), ENVELOPE)
    assert not result.ok and result.tries == 1
    assert "timed out" in (result.error or "").lower()


def test_the_outbox_records_each_webhook(catalogue_engine: Engine, receiver: Receiver) -> None:
    sessions = make_sessionmaker(catalogue_engine)
    with sessions() as s, s.begin():
        queue_notification(s, "alarm", {"text": "gain", "alarm": {"metric": "gain"}})
        queue_notification(s, "quarantined", {"text": "bad file", "path": "/raw/x.fits"})
        queue_notification(s, "morning-summary", {"text": "done"})
    refused = _refused_url()
    settings = NotifySettings(webhooks=(
        Webhook(receiver.url, events=("alarm",)),
        Webhook(refused, events=("quarantined",), retries=1)))
    report = deliver_pending(catalogue_engine, settings, sleep=lambda _: None)
    assert (report.sent, report.failed) == (2, 1)
    with sessions() as s:
        rows = {n.event: n for n in list_notifications(s)}
    assert rows["alarm"].state == "sent" and rows["alarm"].deliveries == {receiver.url: "sent"}
    assert rows["quarantined"].state == "failed"
    assert rows["quarantined"].deliveries[refused].startswith("failed: ")
    assert rows["morning-summary"].state == "sent" and rows["morning-summary"].deliveries == {}
    (body,) = receiver.received
    assert body["event"] == "alarm" and body["text"] == "gain"
    assert body["payload"] == {"alarm": {"metric": "gain"}}
    # Sent once: a second pass finds nothing pending.
    again = deliver_pending(catalogue_engine, settings, sleep=lambda _: None)
    assert (again.sent, again.failed, len(receiver.received)) == (0, 0, 1)


@pytest.mark.parametrize(("table", "message"), [
    ({"webhooks": [{"url": "ftp://x"}]}, "http"),
    ({"webhooks": [{"url": "http://x", "events": ["alarms"]}]}, "unknown event 'alarms'"),
    ({"webhooks": [{"url": "http://x", "timeout": 0}]}, "timeout"),
    ({"webhooks": [{"url": "http://x", "retries": -1}]}, "retries"),
    ({"webhooks": [{"url": "http://x", "secret": "y"}]}, "unknown key 'secret'"),
    ({"smtp": {"host": "mail"}}, "sender"),
    ({"smtp": {"host": "mail", "sender": "a@b", "to": "c@d"}}, "list of addresses"),
    ({"smtp": {"host": "mail", "sender": "a@b", "to": ["c@d"], "password": "x"}},
     "unknown key 'password'"),
    ({"webhooks": {"url": "http://x"}}, "array of tables"),
])
def test_notify_settings_refuse_bad_values(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        notify_from(table)


def test_notify_settings_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "nightlog.toml").write_text(
        '[[notify.webhooks]]\nurl = "http://127.0.0.1:9/a"\nevents = ["alarm"]\n'
        'timeout = 2\nretries = 0\n\n[[notify.webhooks]]\nurl = "https://chat/b"\n')
    hooks = load_settings(env={}, cwd=tmp_path).notify.webhooks
    assert hooks == (Webhook("http://127.0.0.1:9/a", ("alarm",), 2.0, 0),
                     Webhook("https://chat/b", EVENTS, 5.0, 2))


def test_a_hanging_webhook_does_not_hold_ingestion(tmp_path: Path, receiver: Receiver) -> None:
    """The webhook holds the notifier's request until the test lets it go; meanwhile
    the daemon quarantines a file (the event that woke the notifier) and catalogues
    every frame written after it."""
    from nightlog.catalogue.engine import create_engine
    from tests.test_watch import _catalogue, _quarantine

    receiver.hold = threading.Event()
    (tmp_path / "nightlog.toml").write_text(
        f'[watch]\nsettle_seconds = 0.2\n\n[[notify.webhooks]]\nurl = "{receiver.url}"\n'
        'timeout = 5\nretries = 0\n')
    settings = load_settings(env={}, cwd=tmp_path)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    raw = tmp_path / "raw"
    raw.mkdir()
    watcher = Watcher(engine, IngestContext.from_settings(settings, incomplete_is_error=False),
                      JobContext.from_settings(settings),
                      WatchOptions.from_settings(settings, [raw]))
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.ready_event.wait(20)
        (raw / "notes.fits").write_text("not an image\n" * 100)
        assert receiver.arrived.wait(20), "the quarantine was not notified"
        for i in range(5):  # the webhook is holding the notifier's request now
            write_frame(raw / f"f{i}.fits", seed=i)
        wait_for(lambda: len(_catalogue(engine)[0]) == 5, 20, "five frames catalogued")
        assert not receiver.hold.is_set() and len(receiver.received) == 1
        assert receiver.received[0]["event"] == "quarantined"
        assert len(_quarantine(engine)) == 1
    finally:
        receiver.hold.set()
        watcher.stop.set()
        thread.join(30)
        engine.dispose()
    assert not thread.is_alive()
    # The daemon told the webhook it stopped.
    assert [b["event"] for b in receiver.received][-1] == "daemon-stopped"


def test_direct_events_are_sent_by_the_thread_and_flushed_at_stop(
        catalogue_engine: Engine, receiver: Receiver) -> None:
    from nightlog.notify.notifier import Notifier

    notifier = Notifier(catalogue_engine, NotifySettings((Webhook(receiver.url),)),
                        interval=60.0)
    notifier.start()
    notifier.send_direct("daemon-failing", "catalogue unreachable", {"reason": "x"})
    wait_for(lambda: len(receiver.received) == 1, 10, "the direct event")
    notifier.send_direct("daemon-stopped", "stopped", {})
    notifier.stop(timeout=5.0)  # the last event goes before the thread ends
    assert [b["event"] for b in receiver.received] == ["daemon-failing", "daemon-stopped"]
    assert receiver.received[0]["payload"] == {"reason": "x"}
    assert receiver.received[0]["id"] is None  # not from the outbox


def test_a_daemon_says_it_is_failing_after_three_tries() -> None:
    from sqlalchemy.exc import OperationalError

    from nightlog.coordinator.retry import call_with_retry

    calls: list[tuple[int, str]] = []
    tries = iter(range(5))

    def flaky() -> str:
        if next(tries) < 3:
            raise OperationalError("SELECT 1", {}, Exception("database is locked"))
        return "ok"

    stop = threading.Event()
    assert call_with_retry(flaky, stop=stop, first=0.0, on_retry=lambda n, why: calls.append(
        (n, why))) == "ok"
    assert [n for n, _ in calls] == [1, 2, 3]
    assert "database is locked" in calls[0][1]


class _Relay:
    """A minimal SMTP server on a local port: it takes every message and keeps it."""

    def __init__(self) -> None:
        import socketserver

        self.messages: list[tuple[str, list[str], str]] = []
        relay = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write(line.encode() + b"\r\n")

                say("220 test relay")
                sender, rcpts = "", []
                while line := self.rfile.readline().decode().rstrip("\r\n"):
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        say("250 test relay")
                    elif verb == "MAIL":
                        sender = line.split(":", 1)[1].strip(" <>")
                        say("250 ok")
                    elif verb == "RCPT":
                        rcpts.append(line.split(":", 1)[1].strip(" <>"))
                        say("250 ok")
                    elif verb == "DATA":
                        say("354 go on")
                        body = []
                        while (part := self.rfile.readline().decode()) not in (".\r\n", ""):
                            body.append(part)
                        relay.messages.append((sender, rcpts, "".join(body)))
                        say("250 queued")
                    elif verb == "QUIT":
                        say("221 bye")
                        return
                    else:
                        say("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_mail_goes_through_a_local_relay(catalogue_engine: Engine) -> None:
    from nightlog.notify.mail import Mail, send_mail

    relay = _Relay()
    try:
        mail = Mail(host="127.0.0.1", port=relay.port, sender="nightlog@obs.example",
                    to=("staff@obs.example", "night@obs.example"), events=("alarm",))
        assert send_mail(mail, ENVELOPE).ok
        (sender, rcpts, body), = relay.messages
        assert sender == "nightlog@obs.example"
        assert rcpts == ["staff@obs.example", "night@obs.example"]
        assert "Subject: [nightlog] alarm: gain left its band" in body
        assert '"metric": "gain"' in body
        # Through the outbox: the relay's answer is recorded like a webhook's.
        with make_sessionmaker(catalogue_engine)() as s, s.begin():
            queue_notification(s, "alarm", {"text": "gain", "alarm": {"metric": "gain"}})
            queue_notification(s, "quarantined", {"text": "bad file"})  # not wanted
        report = deliver_pending(catalogue_engine, NotifySettings(mail=mail))
        assert (report.sent, report.failed, len(relay.messages)) == (2, 0, 2)
        with make_sessionmaker(catalogue_engine)() as s:
            rows = {n.event: n.deliveries for n in list_notifications(s)}
        assert rows == {"alarm": {mail.key: "sent"}, "quarantined": {}}
    finally:
        relay.close()
    refused = Mail(host="127.0.0.1", port=relay.port, sender="a@b", to=("c@d",),
                   events=("alarm",), retries=1)
    result = send_mail(refused, ENVELOPE, sleep=lambda _: None)
    assert not result.ok and result.tries == 2 and "refused" in (result.error or "").lower()
