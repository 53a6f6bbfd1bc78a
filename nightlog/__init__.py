"""nightlog: calibration database and observing-night archive manager.

Importing the package does no work: no settings are read, no engine is created
and no logging is configured. Entry points (the CLI, the daemon) build those
and pass them down. :class:`nightlog.Archive`, the Python API, is imported on
first use, so ``import nightlog`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nightlog.archive import Archive

__version__ = "0.1.0"

__all__ = ["Archive", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Archive":
        from nightlog.archive import Archive

        return Archive
    raise AttributeError(f"module 'nightlog' has no attribute {name!r}")
