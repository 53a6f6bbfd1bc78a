"""astroscrappy, loaded with a leak-free saturated-star dilation.

Every call of :func:`astroscrappy.detect_cosmics` (up to at least 1.3.0)
leaks one byte per pixel of the frame: its saturated-star mask is grown with
``dilate5(satpixels, 2)``, and the C routine behind ``dilate5``
(``PyDilate5`` in ``imutils.c``) allocates an ``nx × ny`` scratch buffer
whenever it is asked for more than one iteration and never frees it. A worker
that reduces a night of 8-megapixel frames grows by 8 MiB a frame; the watch
daemon, which makes quick-looks in its own process all night, grows the same way.

``detect_cosmics`` looks ``dilate5`` up among its module's globals at each
call, so :func:`leak_free_astroscrappy` replaces that global with a function
that runs the original's single-iteration form ``niter`` times. The original's
loop does exactly that (copy the output, dilate it once more), so masks are
identical bit for bit (``tests/test_lacosmic.py`` checks it against the
unpatched function, and that the process no longer grows). The replacement is
installed on the first call, never at import, and only where the module has
the expected shape; otherwise astroscrappy is used as it is.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

__all__ = ["leak_free_astroscrappy"]

_MARK = "_nightlog_single_pass"
_lock = threading.Lock()


def leak_free_astroscrappy() -> ModuleType:
    """The :mod:`astroscrappy` package, with its leaking ``dilate5`` replaced.

    Returns
    -------
    module
        :mod:`astroscrappy`; call ``detect_cosmics`` on it as usual.
    """
    package = importlib.import_module("astroscrappy")
    with _lock:
        try:
            core = importlib.import_module("astroscrappy.astroscrappy")
        except ImportError:  # a future layout: nothing to patch
            return package
        original = getattr(core, "dilate5", None)
        if original is None or getattr(original, _MARK, False):
            return package
        setattr(core, "dilate5", _single_passes(original))  # noqa: B010
    return package


def _single_passes(original: Any) -> Any:
    """``dilate5`` as ``niter`` calls of ``original(data, 1)``, which allocate nothing
    outside numpy."""

    def dilate5(data: Any, niter: int) -> Any:
        out = original(data, 1)
        for _ in range(int(niter) - 1):
            out = original(out, 1)
        return out

    setattr(dilate5, _MARK, True)
    dilate5.__wrapped__ = original  # type: ignore[attr-defined]
    dilate5.__doc__ = original.__doc__
    return dilate5
