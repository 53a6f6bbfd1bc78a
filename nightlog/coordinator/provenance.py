"""What a product or master file says about its own making.

The catalogue records the provenance; the file carries it too, so it stays
traceable when copied away from the archive:

- header keywords: ``NLSOFT`` (software version), ``NLPARSHA`` (digest of the
  parameters, also kept in the catalogue as ``parameters["digest"]``) and, per
  master used, ``NL<ROLE>`` (its catalogue id) with its SHA-256 in ``NLBIASHA``,
  ``NLDARSHA`` or ``NLFLASHA`` (a night-sky illumination model: ``NLILLUM`` and
  ``NLILLSHA``);
- a ``PROVENANCE`` table (:func:`nightlog.reduction.products.provenance_table`)
  listing every input file with its SHA-256 and the step that used it.

The rows given here are catalogue rows; the table itself is built by the pure
reduction core from the plain entries made of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from astropy.io import fits

from nightlog.reduction.products import ProvenanceEntry

if TYPE_CHECKING:  # rows are only read here: workers import this without SQLAlchemy
    from nightlog.catalogue.models import Frame, Master

__all__ = ["ILLUMINATION", "FileRef", "master_entries", "parameters_digest", "product_entries",
           "set_master_cards", "sha_keyword"]

ROLES = ("bias", "dark", "flat")
#: The longer of two master darks interpolated to a frame's exposure (a camera
#: whose dark grows non-linearly, ``dark_scaling = "interpolate"``): named only
#: when used, beside ``dark``, the shorter one.
SECOND_DARK = "dark2"
#: The night-sky illumination model a science frame is divided by after its flat
#: (profile ``illumination = "night-sky"``): named only when used.
ILLUMINATION = "illumination"
_SHA_KEYWORDS = {SECOND_DARK: "NLDK2SHA", ILLUMINATION: "NLILLSHA"}
_ID_KEYWORDS = {ILLUMINATION: "NLILLUM"}


class FileRef(Protocol):
    """A catalogued file as provenance names it (a frame or master row, or a plain
    value made of one)."""

    @property
    def id(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def sha256(self) -> str: ...


def parameters_digest(parameters: Mapping[str, Any]) -> str:
    """SHA-256 of the parameters as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sha_keyword(role: str) -> str:
    """The keyword holding the SHA-256 of the ``role`` master (8 characters)."""
    return _SHA_KEYWORDS.get(role, f"NL{role.upper()[:3]}SHA")


def set_master_cards(header: fits.Header, masters: Mapping[str, FileRef | None],
                     roles: Iterable[str] = ROLES) -> None:
    """Name each master of ``roles`` in ``header``: id (or ``none``) and SHA-256 (and
    the second dark of an interpolation when there is one)."""
    for extra in (SECOND_DARK, ILLUMINATION):
        if masters.get(extra) is not None and extra not in roles:
            roles = (*roles, extra)
    for role in roles:
        m = masters.get(role)
        card = _ID_KEYWORDS.get(role, f"NL{role.upper()}")
        header[card] = ((m.id if m is not None else "none"),
                        f"{role} master id" if m is not None else f"no {role} master")
        if m is not None:
            header[sha_keyword(role)] = (m.sha256, f"SHA-256 of the {role} master")


def _master_entries(masters: Mapping[str, FileRef | None]) -> list[ProvenanceEntry]:
    return [ProvenanceEntry(step=role, path=m.path, sha256=m.sha256, ref=m.id)
            for role in (*ROLES, SECOND_DARK, ILLUMINATION)
            if (m := masters.get(role)) is not None]


def product_entries(frame: Frame, masters: Mapping[str, Master | None]
                    ) -> list[ProvenanceEntry]:
    """PROVENANCE rows of a product: the raw frame, then each master used."""
    return [ProvenanceEntry(step="raw", path=frame.path, sha256=frame.sha256, ref=frame.id),
            *_master_entries(masters)]


def master_entries(members: Iterable[FileRef], rejected: Mapping[int, str],
                   masters: Mapping[str, FileRef | None]) -> list[ProvenanceEntry]:
    """PROVENANCE rows of a master: every frame considered (used or rejected, with
    the reason), then each master it was calibrated with."""
    rows = [ProvenanceEntry(step="input", path=f.path, sha256=f.sha256, ref=f.id,
                            used=f.id not in rejected, reason=rejected.get(f.id, ""))
            for f in members]
    return [*rows, *_master_entries(masters)]
