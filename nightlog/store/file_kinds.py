"""What kind of thing a path is, before anything reads it.

A watched folder can hold more than files: a FIFO named ``x.fits`` (opening it for
reading blocks until a writer comes), a device (``/dev/zero`` never ends), a
folder named ``d.fits``, or a symbolic link pointing anywhere on the machine.
Raw files are opened only through :func:`open_regular`, which never blocks and
refuses anything but a regular file; :func:`link_outside` tells whether a link
found in a folder leads out of it, and :func:`unstorable_name` whether a path can
be recorded at all.
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from nightlog.errors import UnreadableFileError

__all__ = ["describe_mode", "link_outside", "open_regular", "refusal", "shown_path",
           "unstorable_name"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def describe_mode(mode: int) -> str:
    """``'a FIFO (named pipe)'``, ``'a directory'``... for a file's ``st_mode``."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a file"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (links followed).

    The file is opened without blocking and its type checked on the open
    descriptor, so a FIFO or device put in its place after a ``stat`` is still
    refused and never waited on.

    Raises
    ------
    UnreadableFileError
        Not a regular file (the message says what it is).
    OSError
        It cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFileError(f"not a regular file: {describe_mode(mode)}")
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def link_outside(path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]]
                 ) -> str | None:
    """Why ``path`` should not be followed: it resolves (through symbolic links,
    its own or its folders') to a place outside every one of ``roots``; ``None``
    when it stays inside, or is no link at all."""
    p = Path(path)
    try:
        target = p.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a loop of links
        return f"symbolic link that cannot be resolved: {exc}"
    real_roots = [Path(r).resolve() for r in roots]
    if any(target == r or r in target.parents for r in real_roots):
        return None
    if not p.is_symlink() and target == Path(os.path.abspath(p)):
        return None  # not a link: outside by the caller's own choice
    return f"symbolic link to {target}, outside the folders searched"


def unstorable_name(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be catalogued: its name holds bytes that are not UTF-8
    (Python hands them over as lone surrogates, which no database text takes);
    ``None`` when it can."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8: rename it to be catalogued"
    return None


def refusal(path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]], *,
            follow_symlinks: bool = False) -> str | None:
    """Why ``path``, found in a folder under ``roots``, is not taken: a name the
    catalogue cannot record, or (unless ``follow_symlinks``) a symbolic link leading
    outside ``roots``; ``None`` when it is taken."""
    why = unstorable_name(path)
    if why is None and not follow_symlinks and os.path.islink(path):
        why = link_outside(path, roots)
    return why


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text for a message: bytes that are not UTF-8 and control
    characters (an escape sequence in a file name) as ``\\xNN``."""
    text = os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8",
                                                                      "backslashreplace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
