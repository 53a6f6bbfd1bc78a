"""Who may read the live view, and what a browser may do with its pages.

- **Binding.** The server listens on 127.0.0.1 unless told otherwise; any address
  that is not a loopback one needs a token (:func:`check_binding`).
- **The token.** With a token set, every request must carry it: in the
  ``Authorization: Bearer <token>`` header, or once in the query
  (``?token=<token>``), after which the answer sets an ``HttpOnly``,
  ``SameSite=Strict`` cookie and sends the browser to the same address without
  the token, so it stays out of the address bar and the history. Tokens are
  compared with :func:`hmac.compare_digest`.
- **Hosts.** Without a token the pages answer only requests addressed to a
  loopback name (``127.0.0.1``, ``localhost``, ``[::1]``): a page elsewhere that
  points its own name at 127.0.0.1 (DNS rebinding) gets a 400, not the archive.
- **Headers.** Every answer forbids inline script and style, loads nothing from
  anywhere but the server itself, may not be framed, and sends no referrer.
- **Read-only.** Only GET and HEAD are routed; anything else is 405.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from nightlog.errors import ConfigurationError

__all__ = ["COOKIE", "CSP", "SecurityMiddleware", "check_binding", "is_loopback"]

COOKIE = "nightlog_token"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]{16,}")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen on a non-loopback address without a token.

    Raises
    ------
    ConfigurationError
        ``host`` is not a loopback address and no token is set, or the token is
        not one: fewer than 16 characters, or others than letters, digits and
        ``.``, ``_``, ``~``, ``-`` (it travels in a query and a cookie).
    """
    if token is not None and not _TOKEN_CHARS.fullmatch(token):
        raise ConfigurationError(
            "the token must be at least 16 letters, digits or '._~-' (make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe())')")
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"listening on {host} lets other machines read the archive: give a token "
            "(--token or $NIGHTLOG_SERVE_TOKEN), or listen on 127.0.0.1")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _host_name(scope: Scope) -> str:
    host = _header(scope, b"host") or ""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class SecurityMiddleware:
    """The rules of this module around an ASGI app (``token=None``: loopback only)."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    def _matches(self, candidate: str | None) -> bool:
        if self.token is None or candidate is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"),
                                   self.token.encode("utf-8", "surrogateescape"))

    async def _plain(self, send: Send, status: int, text: str,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = text.encode("utf-8")
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
            *_HEADERS, *(extra or [])]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is None:
            if _host_name(scope).lower() not in _LOOPBACK_NAMES:
                await self._plain(send, 400, "this server answers only requests addressed "
                                  "to 127.0.0.1 or localhost\n")
                return
        else:
            query = parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1"),
                              keep_blank_values=True)
            given = [v for k, v in query if k == "token"]
            if given:
                if not self._matches(given[-1]):
                    await self._plain(send, 401, "wrong token\n")
                    return
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                # One leading slash: '//elsewhere' would send the browser off the server.
                path = "/" + str(scope.get("path", "/")).lstrip("/")
                location = path + (f"?{rest}" if rest else "")
                cookie = (f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")
                await self._plain(send, 303, "token accepted\n", [
                    (b"location", location.encode("utf-8")),
                    (b"set-cookie", cookie.encode("utf-8"))])
                return
            bearer = _header(scope, b"authorization")
            cookies = SimpleCookie()
            try:
                cookies.load(_header(scope, b"cookie") or "")
            except CookieError:  # a malformed cookie header carries no token
                cookies = SimpleCookie()
            held = cookies[COOKIE].value if COOKIE in cookies else None
            if not (self._matches(bearer.removeprefix("Bearer ") if bearer and
                                  bearer.startswith("Bearer ") else None)
                    or self._matches(held)):
                await self._plain(send, 401, "this server needs its token: open the address "
                                  "once with ?token=<token>, or send "
                                  "'Authorization: Bearer <token>'\n",
                                  [(b"www-authenticate", b"Bearer")])
                return

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_HEADERS]
            await send(message)

        await self.app(scope, receive, _send)
