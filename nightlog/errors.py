"""The one exception tree of nightlog.

Every error the library raises on purpose derives from :class:`NightlogError`, so
the CLI can turn any of them into one clear line and an exit code, and the daemon
can record it on the frame at hand and go on::

    NightlogError
    ├── ConfigurationError        bad or unreadable settings / profile definitions
    │   └── ProfileError          an instrument profile that is not well formed
    ├── HeaderError               a header that cannot be normalised
    │   ├── MissingKeywordError   a required keyword is absent
    │   ├── InvalidValueError     a value cannot be parsed or is impossible
    │   └── SectionError          a FITS section that is malformed or off the image
    ├── FileProblem               a file that cannot be taken as a frame
    │   ├── NotFitsError          not a FITS file at all
    │   ├── IncompleteFileError   shorter than its header declares (maybe still arriving)
    │   └── UnreadableFileError   I/O failure, permissions, corrupt compression
    ├── CatalogueError            database problems
    │   ├── SchemaOutOfDateError  the schema is behind the code: run ``nightlog db upgrade``
    │   └── NotFoundError         a requested row does not exist
    ├── StoreError                archive (file store) problems: paths, writes, space
    │   ├── ChecksumMismatchError files changed or gone since the catalogue recorded them
    │   ├── ArchiveFileExists     a file would be overwritten
    │   └── ArchiveNotWritable    read-only, full, over quota or no permission: for now
    └── ReductionError            a reduction step cannot be carried out
        ├── ShapeMismatchError    frames or masters of different shapes
        └── CombineError          a stack that cannot be combined

``exit_code`` gives the CLI its exit status per family.
"""

from __future__ import annotations

__all__ = [
    "AmplifierError",
    "ArchiveFileExists",
    "ArchiveNotWritable",
    "CatalogueError",
    "ChecksumMismatchError",
    "CombineError",
    "ConfigurationError",
    "FileProblem",
    "HeaderError",
    "IncompleteFileError",
    "InvalidValueError",
    "MissingKeywordError",
    "NightlogError",
    "NotFitsError",
    "NotFoundError",
    "ProfileError",
    "ReductionError",
    "SchemaOutOfDateError",
    "SectionError",
    "ShapeMismatchError",
    "StoreError",
    "UnreadableFileError",
]


class NightlogError(Exception):
    """Root of every error nightlog raises deliberately."""

    exit_code: int = 1


class ConfigurationError(NightlogError):
    """The configuration file or an option is invalid."""

    exit_code = 2


class ProfileError(ConfigurationError):
    """An instrument profile definition is invalid or no profile matches."""


class HeaderError(NightlogError):
    """A FITS header cannot be normalised."""

    exit_code = 3


class MissingKeywordError(HeaderError):
    """A keyword the profile requires is absent or blank."""


class InvalidValueError(HeaderError):
    """A keyword value cannot be parsed or is physically impossible."""


class SectionError(HeaderError):
    """A FITS section string is malformed or lies outside the image."""


class AmplifierError(HeaderError):
    """A multi-amplifier file's extensions do not make the detector its profile
    describes (an extension missing or extra, shapes that differ, sections that
    overlap, leave gaps or reach outside the image)."""


class FileProblem(NightlogError):
    """A file cannot be taken as a frame."""

    exit_code = 3


class NotFitsError(FileProblem):
    """The file is not a FITS file."""


class IncompleteFileError(FileProblem):
    """The file is shorter than its header declares (possibly still being written)."""


class UnreadableFileError(FileProblem):
    """The file cannot be read (permissions, I/O error, corrupt compression)."""


class CatalogueError(NightlogError):
    """The catalogue database cannot do what was asked."""

    exit_code = 4


class SchemaOutOfDateError(CatalogueError):
    """The database schema is older than this version of nightlog."""


class NotFoundError(CatalogueError):
    """A requested catalogue row does not exist."""


class StoreError(NightlogError):
    """The archive file store cannot read or write a file."""

    exit_code = 5


class ChecksumMismatchError(StoreError):
    """Archive files no longer hold the bytes the catalogue recorded (changed or missing)."""


class ArchiveFileExists(StoreError):
    """An archive file is never overwritten: one is already under the name asked for."""


class ArchiveNotWritable(StoreError):
    """The archive refuses writes for now (read-only, full, over quota, no permission):
    nothing is wrong with the work, which succeeds once the archive is writable again."""


class ReductionError(NightlogError):
    """A reduction step cannot be carried out on its inputs."""

    exit_code = 6


class ShapeMismatchError(ReductionError):
    """Frames or masters that must align have different shapes."""


class CombineError(ReductionError):
    """A stack of frames cannot be combined."""
