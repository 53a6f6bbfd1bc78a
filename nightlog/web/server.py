"""Run the live view on uvicorn: the binding checked, the app built, served until
interrupted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nightlog.web.security import check_binding

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from nightlog.settings import Settings

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def serve(settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          token: str | None = None, engine: Engine | None = None) -> None:
    """Serve the live view of ``settings``' archive on ``host:port`` until interrupted.

    Raises
    ------
    ConfigurationError
        ``host`` is not a loopback address and no token is given, or the token is
        not a usable one (:func:`~nightlog.web.security.check_binding`).
    """
    check_binding(host, token)
    import uvicorn

    from nightlog.web.app import create_app

    app = create_app(settings, engine=engine, token=token)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=False, server_header=False)
