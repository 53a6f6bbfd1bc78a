"""The ``nightlog`` program: ``--version`` at once, everything else through the app.

``nightlog --version`` is asked by scripts and package managers and needs neither
typer nor rich: it is answered from the package's own version before either is
imported. Any other command line goes to :data:`nightlog.cli.app.app`, which
answers ``--version`` in the same words when it comes with other options.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``argv``: the arguments, default ``sys.argv[1:]``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        from nightlog import __version__

        sys.stdout.write(f"nightlog {__version__}\n")
        return
    from nightlog.cli.app import app

    app(args=None if argv is None else args)
