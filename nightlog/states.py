"""The states of nightlog's records and runs, as types.

Each is a :class:`enum.StrEnum`: a member *is* its string (``FrameStatus.OK ==
"ok"``), so the catalogue stores it in a plain text column, JSON and log lines
carry the word, and a comparison with a misspelt member fails at import rather
than silently never matching. The catalogue and the coordinator share them.

=================  ========================================================
type               where
=================  ========================================================
``FrameStatus``    ``frames.status``: ``ok``, or ``bad`` (never enters a
                   master, never reduced)
``MasterQuality``  ``masters.quality``: ``good``, or ``bad`` (never matched)
``ProductStatus``  ``products.status``: ``current``, or ``replaced`` by a
                   newer product of the same frame
``ProductKind``    ``products.kind``: ``final``, or ``quicklook`` (the live
                   reduction, replaced by the final one)
``BuildStatus``    a master build's outcome
``ReduceStatus``   a frame's reduction outcome
``IngestOutcome``  what ingestion did with one file
``FileState``      a catalogued file checked again against its checksum
``FailureCause``   why a unit of work failed, and so whether to try again
``AlarmState``     ``alarms.state``: ``open``, or ``acknowledged`` by staff
``NoticeState``    ``notifications.state``: ``pending``, ``sent``, ``failed``
``Coverage``       how a set-up's calibration is served (``nightlog plan``)
``MissingPolicy`` what a reduction does when a master is missing (the
                   profile's ``missing``)
``HoldState``      ``frame_holds.state``: ``held`` (waiting for a master) or
                   ``stopped`` (the policy refuses without it)
``QualityVerdict`` ``frame_quality.verdict``: ``good``, ``poor`` (a quality
                   rule marks it, with the reasons) or ``unjudged`` (no rule
                   applies, or no figures to judge)
=================  ========================================================
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AlarmState", "BuildStatus", "Coverage", "FailureCause", "FileState",
           "FrameStatus", "HoldState", "IngestOutcome", "MasterQuality", "MissingPolicy",
           "NoticeState", "ProductKind", "ProductStatus", "QualityVerdict", "ReduceStatus"]


class FrameStatus(StrEnum):
    """Whether a catalogued frame may be used."""

    OK = "ok"
    BAD = "bad"


class MasterQuality(StrEnum):
    """A master's flag: ``bad`` masters are never matched."""

    GOOD = "good"
    BAD = "bad"


class ProductStatus(StrEnum):
    """A product is ``current`` until a newer one of its frame replaces it."""

    CURRENT = "current"
    REPLACED = "replaced"


class ProductKind(StrEnum):
    """The final reduction, or the live quick-look it replaces."""

    FINAL = "final"
    QUICKLOOK = "quicklook"


class BuildStatus(StrEnum):
    """What happened to one due calibration group (``too-few``: a group with fewer
    frames than its master needs, that the profile's policy could not complete)."""

    BUILT = "built"
    SKIPPED = "skipped"
    TOO_FEW = "too-few"
    FAILED = "failed"


class ReduceStatus(StrEnum):
    """What happened to one science frame."""

    REDUCED = "reduced"
    UP_TO_DATE = "up-to-date"
    HELD = "held"
    STOPPED = "stopped"
    FAILED = "failed"


class MissingPolicy(StrEnum):
    """What reducing a frame does when no master of a kind matches it.

    ``reduce-without``: reduced without that step, flagged in the product and
    counted as a problem; ``hold``: not reduced yet, the frame waits (``held``)
    until a master arrives (flats taken in the morning); ``fail``: not reduced,
    the frame is ``stopped`` with the reason until someone decides.
    """

    REDUCE_WITHOUT = "reduce-without"
    HOLD = "hold"
    FAIL = "fail"


class HoldState(StrEnum):
    """A frame not reduced for want of a master: ``held`` (it is reduced when one
    arrives) or ``stopped`` (the policy ``fail``)."""

    HELD = "held"
    STOPPED = "stopped"


class IngestOutcome(StrEnum):
    """What ingestion did with one file."""

    ADDED = "added"
    NEW_VERSION = "new-version"
    MOVED = "moved"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"
    QUARANTINED = "quarantined"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


class FileState(StrEnum):
    """A catalogued file hashed again."""

    OK = "ok"
    CHANGED = "changed"
    MISSING = "missing"
    UNREADABLE = "unreadable"


class FailureCause(StrEnum):
    """Why a build or a reduction failed, told by the exception, not by its words.

    ``catalogue`` and ``archive`` failures say nothing about the frames: the same
    work succeeds once the catalogue is reachable or the archive writable again,
    so a daemon tries them again. ``work`` is the files' or the data's own
    problem (unreadable, changed, refused by the reduction): not retried.
    """

    CATALOGUE = "catalogue"
    ARCHIVE = "archive"
    WORK = "work"


class AlarmState(StrEnum):
    """A detector-health alarm: ``open`` until staff acknowledge it."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class NoticeState(StrEnum):
    """A notification in the outbox: ``pending`` until every webhook it goes to has
    taken it (``sent``) or refused it after its retries (``failed``)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Coverage(StrEnum):
    """How a set-up's calibration of one kind would be served tonight.

    ``exact``: by a master of tonight's frames; ``other-night``: by a master of
    another night, within the policy's window; ``scale-only``: by a dark rate
    scaled to an exposure time none of its darks had; ``missing``: by none.
    """

    EXACT = "exact"
    OTHER_NIGHT = "other-night"
    SCALE_ONLY = "scale-only"
    MISSING = "missing"


class QualityVerdict(StrEnum):
    """What the quality rules say of a reduced science frame."""

    GOOD = "good"
    POOR = "poor"
    UNJUDGED = "unjudged"
