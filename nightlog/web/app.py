"""The live web view as an ASGI app: :func:`create_app` builds it from the settings.

Routes (all read-only: GET and HEAD only)::

    /                         tonight: the newest night, live
    /night/YYYY-MM-DD         an older night, the same page
    /nights                   every night with frames
    /frame/ID                 a frame, its products and their provenance
    /api/pulse[?night=DATE]   the change mark polled by the pages (JSON)
    /api/night[/YYYY-MM-DD]   the data of a night page (JSON)
    /api/nights, /api/frame/ID
    /thumb/{frame,product,master}/ID.png
    /static/live.js, /static/live.css

Each request opens its own session and only reads. The pages poll
``/api/pulse`` every 1.5 s and fetch themselves again when the mark changes (no
reload). Nothing is built at import: the engine comes from the caller or is
made when the app starts, and disposed when it stops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.web import live_data, pages
from nightlog.web.security import SecurityMiddleware
from nightlog.web.thumbnails import ThumbnailCache, ThumbnailUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from nightlog.settings import Settings

__all__ = ["POLL_SECONDS", "create_app"]

#: How often a page asks whether anything changed.
POLL_SECONDS = 1.5
_STATIC = {"live.js": "text/javascript; charset=utf-8", "live.css": "text/css; charset=utf-8",
           "icon.svg": "image/svg+xml"}


def _json(doc: Any, status: int = 200) -> Response:
    body = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _html(page: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status, headers={"cache-control": "no-store"})


def _night(request: Request) -> dt.date | None:
    text = request.path_params.get("night")
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _NotFound(f"not a night (YYYY-MM-DD): {text}") from None


class _NotFound(Exception):
    pass


def _ident(request: Request) -> int:
    """The record id of the path; beyond any column's range it names nothing."""
    value = int(request.path_params["ident"])
    if value >= 2**63:
        raise _NotFound(f"no record {value}")
    return value


def create_app(settings: Settings, *, engine: Engine | None = None, token: str | None = None,
               clock: Callable[[], dt.datetime] | None = None) -> Any:
    """The live view of the archive of ``settings``, as an ASGI app.

    Parameters
    ----------
    settings : Settings
        The installation (its catalogue and archive root).
    engine : Engine, optional
        The catalogue's engine; by default one is made from ``settings`` when the
        app starts and disposed when it stops.
    token : str, optional
        The token every request must carry (:mod:`nightlog.web.security`);
        without one the app answers only requests addressed to a loopback name.
    clock : callable, optional
        The current time (UTC); for tests.

    Returns
    -------
    ASGI application
        The Starlette app inside the security middleware.
    """
    now = clock or (lambda: dt.datetime.now(dt.UTC))
    thumbs = ThumbnailCache(settings.archive_root / "cache" / "thumbnails")
    held: dict[str, Any] = {"engine": engine}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        own = held["engine"] is None
        if own:
            held["engine"] = create_engine(settings.database_url, busy_timeout_ms=round(
                1000 * settings.database.busy_timeout_seconds))
        try:
            yield
        finally:
            if own:
                held["engine"].dispose()
                held["engine"] = None

    def _read(fn: Callable[..., Any], *args: Any) -> Any:
        if held["engine"] is None:  # the app was not started (no lifespan): start lazily
            held["engine"] = create_engine(settings.database_url)
        with make_sessionmaker(held["engine"])() as session:
            return fn(session, *args)

    def tonight(request: Request) -> Response:
        doc = _read(live_data.night_view, None, now())
        return _html(pages.night_page(doc, tonight=True))

    def night(request: Request) -> Response:
        doc = _read(live_data.night_view, _night(request), now())
        return _html(pages.night_page(doc, tonight=False))

    def nights(request: Request) -> Response:
        return _html(pages.nights_page(_read(live_data.nights_view)))

    def frame(request: Request) -> Response:
        doc = _read(live_data.frame_view, _ident(request))
        if doc is None:
            raise _NotFound(f"no frame {request.path_params['ident']}")
        return _html(pages.frame_page(doc))

    def api_pulse(request: Request) -> Response:
        text = request.query_params.get("night") or None
        try:
            night = None if text is None else dt.date.fromisoformat(text)
        except ValueError:
            raise _NotFound(f"not a night (YYYY-MM-DD): {text}") from None
        return _json(_read(live_data.pulse_view, night, now()))

    def api_night(request: Request) -> Response:
        return _json(_read(live_data.night_view, _night(request), now()))

    def api_nights(request: Request) -> Response:
        return _json(_read(live_data.nights_view))

    def api_frame(request: Request) -> Response:
        doc = _read(live_data.frame_view, _ident(request))
        if doc is None:
            return _json({"error": f"no frame {request.path_params['ident']}"}, 404)
        return _json(doc)

    def thumbnail(request: Request) -> Response:
        what, ident = request.path_params["what"], _ident(request)
        source = _read(live_data.image_source, what, ident)
        if source is None:
            raise _NotFound(f"no {what} {ident}")
        try:
            png = thumbs.png(source.path, source.hdu, source.sha256)
        except ThumbnailUnavailable as exc:
            return Response(str(exc), status_code=404, media_type="text/plain")
        return Response(png, media_type="image/png",
                        headers={"cache-control": "private, max-age=60"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            raise _NotFound(f"no file {name}")
        data = resources.files("nightlog.web").joinpath("static", name).read_bytes()
        if name == "live.js":
            data = data.replace(b"__POLL_MS__", str(round(POLL_SECONDS * 1000)).encode())
        return Response(data, media_type=_STATIC[name], headers={"cache-control": "no-cache"})

    def not_found(request: Request, exc: Exception) -> Response:
        message = str(exc) if isinstance(exc, _NotFound) else "no such page"
        if request.url.path.startswith("/api/"):
            return _json({"error": message}, 404)
        return _html(pages.error_page(404, message), 404)

    routes = [
        Route("/", tonight), Route("/night/{night}", night), Route("/nights", nights),
        Route("/frame/{ident:int}", frame), Route("/api/pulse", api_pulse),
        Route("/api/night", api_night), Route("/api/night/{night}", api_night),
        Route("/api/nights", api_nights), Route("/api/frame/{ident:int}", api_frame),
        Route("/thumb/{what:str}/{ident:int}.png", thumbnail),
        Route("/static/{name:str}", static),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={_NotFound: not_found, 404: not_found})
    return SecurityMiddleware(app, token=token)
