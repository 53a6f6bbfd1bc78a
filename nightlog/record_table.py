"""Catalogue records as astropy Tables: one column per plain field, with units.

Records are the plain dictionaries of :mod:`nightlog.catalogue.records` and
:mod:`nightlog.catalogue.listing`; a field that is ``None`` in some rows becomes a
masked entry, and fields holding nested values (dicts, lists) stay out of the
table (the records keep them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from astropy import units as u
from astropy.table import MaskedColumn, Table

__all__ = ["FIELD_UNITS", "records_table"]

#: Units of the record fields that have one.
FIELD_UNITS: dict[str, u.UnitBase] = {
    "exptime": u.s,
    "set_temp": u.deg_C,
    "size": u.byte,
}

_PLAIN = (str, int, float, bool)


def _column(name: str, values: list[Any]) -> MaskedColumn:
    present = [v for v in values if v is not None]
    mask = [v is None for v in values]
    if not present:
        return MaskedColumn([""] * len(values), name=name, mask=[True] * len(values),
                            dtype=str)
    if all(isinstance(v, bool) for v in present):
        fill: Any = False
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        fill = 0
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        fill = 0.0
        values = [None if v is None else float(v) for v in values]
    else:
        fill = ""
        values = [None if v is None else str(v) for v in values]
    data = [fill if v is None else v for v in values]
    return MaskedColumn(data, name=name, mask=mask, unit=FIELD_UNITS.get(name))


def records_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    """An astropy Table of ``records``, one column per name in ``columns``.

    Parameters
    ----------
    records : sequence of mapping
        Plain records (numbers, strings, booleans, ``None``).
    columns : sequence of str
        Fields to keep, in order; fields whose values are not plain are skipped.

    Returns
    -------
    astropy.table.Table
        Masked where a record holds ``None``; ``exptime`` in s, ``set_temp`` in °C,
        ``size`` in bytes. An empty list gives a table with the columns and no row.
    """
    kept = [c for c in columns
            if all(r.get(c) is None or isinstance(r.get(c), _PLAIN) for r in records)]
    if not records:
        return Table(names=kept, dtype=[str] * len(kept))
    return Table([_column(c, [r.get(c) for r in records]) for c in kept])
