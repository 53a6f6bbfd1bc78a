"""The exit statuses of every command, one table for scripts and monitoring.

An error nightlog raises on purpose ends the command with its family's status
(:attr:`nightlog.errors.NightlogError.exit_code`); a command that ran to its end
says with its status whether all of its work was done.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitStatus"]


class ExitStatus(IntEnum):
    """Exit statuses (``docs/index.md`` lists them with the commands that use each)."""

    #: Everything asked was done (reducing frames already reduced is done).
    OK = 0
    #: Some unit of work failed: a file could not be ingested, a build or a frame
    #: failed, a daemon is not running (``status --require-running``).
    FAILED = 1
    #: The configuration is invalid, or the command line (usage errors).
    CONFIGURATION = 2
    #: Bad input: files were quarantined (their reasons are listed); ``profile check``
    #: found a file ingest would quarantine, or (``--strict``) a warning.
    BAD_INPUT = 3
    #: The catalogue is unreachable, locked too long, or out of date.
    CATALOGUE = 4
    #: Archive files changed, are missing, or cannot be written.
    ARCHIVE = 5
    #: The reduction refused the data.
    REDUCTION = 6
    #: Nothing to work on: no file matched, or the catalogue holds no frame.
    NO_INPUT = 7
    #: Interrupted (SIGINT); running the same command again finishes the work.
    INTERRUPTED = 130
