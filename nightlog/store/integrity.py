"""Is an archive file still what the catalogue recorded? Hash it again and compare.

Provenance is only as good as the files it points at: a raw frame rewritten in
place or a master deleted by hand breaks the chain from a product to its inputs
without the catalogue noticing. :func:`check_file` hashes a file with the same
:func:`~nightlog.store.raw.sha256_of` used at ingestion and when the archive wrote
it, and says whether it is unchanged, changed, missing or unreadable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nightlog.states import FileState
from nightlog.store.raw import sha256_of

__all__ = ["FileCheck", "check_file"]


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The outcome of hashing one file again.

    Attributes
    ----------
    path : str
        The file.
    expected : str
        SHA-256 the catalogue recorded.
    actual : str or None
        SHA-256 of the bytes now there; None when the file cannot be read.
    status : str
        ``ok``, ``changed`` (other bytes), ``missing`` (no such file) or
        ``unreadable`` (there, but reading failed; ``detail`` says why).
    detail : str
        The operating system's message for an unreadable file.
    """

    path: str
    expected: str
    actual: str | None
    status: FileState
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == FileState.OK


def check_file(path: str | os.PathLike[str], expected: str) -> FileCheck:
    """Hash ``path`` again and compare with ``expected`` (never raises for a bad file)."""
    where = Path(path)
    try:
        actual = sha256_of(where)
    except FileNotFoundError:
        return FileCheck(os.fspath(path), expected, None, FileState.MISSING)
    except OSError as exc:
        status = FileState.MISSING if not where.exists() else FileState.UNREADABLE
        return FileCheck(os.fspath(path), expected, None, status, exc.strerror or str(exc))
    return FileCheck(os.fspath(path), expected, actual,
                     FileState.OK if actual == expected else FileState.CHANGED)
