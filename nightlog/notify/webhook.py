"""One webhook delivery: a JSON POST with a timeout, tried again after a failure.

The body is the event's envelope::

    {"event": "alarm", "id": 12, "created_at": "2026-12-01T06:00:00+00:00",
     "text": "nightlog alarm: gain of flat master 20 ...", "payload": {...}}

Any 2xx answer is success. A refused connection, a timeout, a non-2xx answer or
a malformed URL is a failure; after ``retries`` further tries (1 s, 2 s, 4 s …
apart, at most 8 s) the delivery gives up and says why. ``sleep`` is a parameter
so tests need not wait.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nightlog import __version__

if TYPE_CHECKING:
    from nightlog.notify.config import Webhook

__all__ = ["Delivery", "post_event"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a delivery ended: ``ok``, the tries made, and the last error (if any)."""

    ok: bool
    tries: int
    error: str | None = None

    @property
    def verdict(self) -> str:
        """``"sent"``, or ``"failed: <why>"`` (what the outbox row keeps)."""
        return "sent" if self.ok else f"failed: {self.error}"


def _post_once(hook: Webhook, body: bytes) -> None:
    request = urllib.request.Request(
        hook.url, data=body, method="POST",
        headers={"Content-Type": "application/json",
                 "User-Agent": f"nightlog/{__version__}"})
    with urllib.request.urlopen(request, timeout=hook.timeout) as answer:
        status = answer.status
        answer.read(65536)
    if not 200 <= status < 300:  # urllib raises for 4xx and 5xx itself
        raise OSError(f"HTTP {status}")


def post_event(hook: Webhook, envelope: Mapping[str, Any], *,
               sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST ``envelope`` as JSON to ``hook``, with its timeout and retries.

    Never raises for a network or server problem: the result says what happened.
    """
    body = json.dumps(envelope, default=str).encode("utf-8")
    error = ""
    for attempt in range(hook.retries + 1):
        if attempt:
            sleep(min(8.0, 2.0 ** (attempt - 1)))
        try:
            _post_once(hook, body)
            return Delivery(ok=True, tries=attempt + 1)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            error = f"{type(exc).__name__}: {reason}"
    return Delivery(ok=False, tries=hook.retries + 1, error=error[:300])
