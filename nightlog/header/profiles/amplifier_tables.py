"""The amplifiers of a profile table (``amplifiers``, ``crosstalk``), checked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nightlog.errors import ProfileError
from nightlog.header.amplifiers import MEASURED, AmplifierSpec
from nightlog.header.profiles.table_values import _err, _float, _keyword, _region, _string
from nightlog.settings_keys import refuse_unknown

_AMP_KEYS = ("hdu", "datasec", "biassec", "detsec", "gain", "read_noise", "saturation",
             "nonlinearity", "name")


def _amp_number(name: str, key: str, value: Any, *, measured: bool) -> str | float:
    if isinstance(value, str):
        if value.strip().lower() == MEASURED:
            if not measured:
                raise _err(name, key, "only a gain or a read noise can be 'measured'")
            return MEASURED
        return _keyword(name, key, value)
    return _float(name, key, value, lo=0.0, lo_open=key.endswith("gain"))


def _amplifier(name: str, key: str, value: Any) -> AmplifierSpec:
    if not isinstance(value, dict):
        raise _err(name, key, "expected a table such as { hdu = \"AMP1\", gain = \"GAIN\" }")
    refuse_unknown(value, _AMP_KEYS, f"instrument profile {name!r}, key {key!r}",
                   error=ProfileError)
    if "hdu" not in value:
        raise _err(name, key, "give the amplifier's hdu (an EXTNAME or an index)")
    hdu = value["hdu"]
    if isinstance(hdu, bool) or not isinstance(hdu, int | str) or (
            isinstance(hdu, int) and hdu < 0) or (isinstance(hdu, str) and not hdu.strip()):
        raise _err(name, f"{key}.hdu", f"expected an EXTNAME or an HDU index, not {hdu!r}")
    fields: dict[str, Any] = {"hdu": hdu.strip() if isinstance(hdu, str) else hdu}
    for sec in ("datasec", "biassec", "detsec"):
        if sec in value:
            fields[sec] = _region(name, f"{key}.{sec}", value[sec])
    if fields.get("datasec", "x") is None or fields.get("detsec", "x") is None:
        raise _err(name, key, "an amplifier needs a datasec and a detsec")
    for number in ("gain", "read_noise", "saturation"):
        if number in value:
            fields[number] = _amp_number(name, f"{key}.{number}", value[number],
                                         measured=number != "saturation")
    if "nonlinearity" in value:
        coeffs = value["nonlinearity"]
        if not isinstance(coeffs, list) or not coeffs or not all(
                isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
                for c in coeffs):
            raise _err(name, f"{key}.nonlinearity", "expected a list of numbers [c0, c1, ...]")
        fields["nonlinearity"] = tuple(float(c) for c in coeffs)
    if "name" in value:
        fields["name"] = _string(name, f"{key}.name", value["name"])
    return AmplifierSpec(**fields)


def _amplifiers(name: str, key: str, value: Any) -> tuple[AmplifierSpec, ...] | str:
    if isinstance(value, str):
        if value.strip().lower() != "all":
            raise _err(name, key, "expected \"all\" or a list of amplifier tables")
        return "all"
    if not isinstance(value, list) or not value:
        raise _err(name, key, "expected \"all\" or a list of amplifier tables")
    specs = tuple(_amplifier(name, f"{key}[{i}]", v) for i, v in enumerate(value))
    hdus = [s.hdu for s in specs]
    if len(set(hdus)) != len(hdus):
        raise _err(name, key, "two amplifiers name the same hdu")
    return specs


def _crosstalk(name: str, key: str, value: Any) -> tuple[tuple[float, ...], ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(r, list) and len(r) == len(value) for r in value):
        raise _err(name, key, "expected a square matrix [[...], ...], one row per amplifier")
    return tuple(tuple(_float(name, key, c, lo=-1.0, hi=1.0) for c in row) for row in value)


def _check_crosstalk(name: str, values: Mapping[str, Any]) -> None:
    matrix, amps = values.get("crosstalk"), values.get("amplifiers")
    if matrix is None:
        return
    if amps is None:
        raise _err(name, "crosstalk", "a crosstalk matrix needs the amplifiers it is between")
    if not isinstance(amps, str) and len(matrix) != len(amps):
        raise _err(name, "crosstalk", f"{len(matrix)} rows for {len(amps)} amplifiers")
