"""The pages of a long listing: the newest first, ``--limit`` rows a page (1000 unless
told; 0 every one), ``--after ID`` for the next page, ``--oldest-first``, and a note on
stderr when rows are left out (``nightlog frames``, ``calib list``, ``quarantine``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

__all__ = ["DEFAULT_LIMIT", "Page"]

#: Rows listed when ``--limit`` is not given.
DEFAULT_LIMIT = 1000

class Page:
    """The rows of one page of at most ``limit`` (0: every one), and whether more
    were left out (one row beyond the limit is asked for to know).

    Parameters
    ----------
    limit : int
        Rows of the page; 0: every one.
    noun : str
        What a row is, for the note (``frame(s)``).
    """

    def __init__(self, limit: int, noun: str = "row(s)") -> None:
        self.limit = limit
        self.noun = noun
        self.listed = 0
        self.last_id: object = None
        self.more = False

    @property
    def asked(self) -> int | None:
        """The rows to ask the catalogue for: one beyond the page (``None``: every one)."""
        return self.limit + 1 if self.limit else None

    def cut(self, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``rows`` up to the page's end, as they come."""
        for row in rows:
            if self.limit and self.listed == self.limit:
                self.more = True
                return
            self.listed += 1
            self.last_id = row["id"]
            yield row

    def note(self, oldest_first: bool) -> None:
        """Say on stderr that rows were left out, and how to list the next ones."""
        if self.more:
            order = "oldest" if oldest_first else "newest"
            typer.echo(f"the {order} {self.listed} {self.noun} listed; more are left out "
                       f"(--after {self.last_id} lists the next ones, --limit 0 every one)",
                       err=True)
