"""Options left unset cost nothing: their converters are built for a value only.

typer converts every parameter through a converter (a pydantic ``TypeAdapter``)
that it builds when the parameter is first processed, even when the command line
does not give it and its value is ``None``, which converts to ``None``. The root
command's options (``--config``, ``--help``, the completion options) are
processed before any sub-command, so ``nightlog status --help`` paid the import
of pydantic for them. :func:`convert_when_given` makes such a parameter build
its converter only for a value; the values it produces are typer's.
"""

from __future__ import annotations

from typing import Any

from typer._coercion import build_runtime_param
from typer.core import _TyperParameter

__all__ = ["convert_when_given"]


class _ConvertWhenGiven:
    """typer's converter of one parameter, built for the first value that is not None."""

    __slots__ = ("_converter",)

    def __init__(self) -> None:
        self._converter: Any = None

    def coerce(self, value: Any, param: _TyperParameter, ctx: Any) -> Any:
        if value is None:
            # What typer's converter makes of a missing value, without building it.
            return () if param.multiple or param.nargs == -1 else None
        if self._converter is None:
            self._converter = build_runtime_param(param.type_descriptor)
        return self._converter.coerce(value, param=param, ctx=ctx)


def convert_when_given(params: list[Any]) -> None:
    """Let each typer parameter of ``params`` build its converter only for a value."""
    for param in params:
        if isinstance(param, _TyperParameter) and param._runtime_param is None:
            param._runtime_param = _ConvertWhenGiven()
