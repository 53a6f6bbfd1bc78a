"""Whether a product's provenance still holds: every file of its tree hashed again.

The catalogue gives the tree (:func:`~nightlog.catalogue.provenance.provenance_tree`)
with the checksum it recorded for each file; the store hashes each file again
(:func:`~nightlog.store.integrity.check_file`). What changed or is missing is
reported here, and as one :class:`~nightlog.errors.ChecksumMismatchError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nightlog.catalogue.provenance import ProvenanceTree
from nightlog.errors import ChecksumMismatchError
from nightlog.store.integrity import FileCheck, check_file

__all__ = ["ProvenanceCheck", "verify_provenance"]


@dataclass(frozen=True, slots=True)
class ProvenanceCheck:
    """Every file of a product's tree, checked: ``(what, check)`` in tree order."""

    product_id: int
    checked: tuple[tuple[str, FileCheck], ...]

    @property
    def problems(self) -> list[tuple[str, FileCheck]]:
        """The files that changed, are missing or cannot be read."""
        return [(what, c) for what, c in self.checked if not c.ok]

    def of(self, path: str, sha256: str) -> FileCheck | None:
        """The check of the file at ``path`` recorded with ``sha256`` (``None``: unchecked)."""
        for _what, c in self.checked:
            if c.path == path and c.expected == sha256:
                return c
        return None

    def as_dict(self) -> dict[str, Any]:
        """The ``verification`` object of ``nightlog provenance --format json``."""
        return {"checked": len(self.checked),
                "problems": [{"what": what, "path": c.path, "status": c.status,
                              "expected": c.expected, "actual": c.actual, "detail": c.detail}
                             for what, c in self.problems]}

    def error(self) -> ChecksumMismatchError | None:
        """The error that says what changed, or ``None`` when every file is unchanged."""
        problems = self.problems
        if not problems:
            return None
        what, first = problems[0]
        return ChecksumMismatchError(
            f"{len(problems)} file(s) of product {self.product_id}'s provenance changed or "
            f"are missing, first: {first.status} {what} {first.path}")


def verify_provenance(tree: ProvenanceTree) -> ProvenanceCheck:
    """Hash every file of ``tree`` again and compare with the recorded checksums.

    Parameters
    ----------
    tree : ProvenanceTree
        A product's tree, as recorded.

    Returns
    -------
    ProvenanceCheck
        One check per distinct file (product, raw frame, masters, their inputs);
        a bad file is reported, never raised.
    """
    return ProvenanceCheck(tree.id, tuple((f.what, check_file(f.path, f.sha256))
                                          for f in tree.files()))
