"""The archive benchmark's long listing: every science frame of ten years as JSON.

``nightlog frames --kind science --limit 0 --format json`` writes the records as
they are read, a chunk at a time; before, the catalogue rows of every frame were
made, turned into a list of records and dumped at once. :func:`stream_figures`
times both on the benchmark's catalogue and measures what each adds to the
process's peak resident memory. Run by ``archive_scale.py``.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from sqlalchemy import Engine, func, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.listing import iter_frame_records
from nightlog.catalogue.models import Frame
from nightlog.catalogue.queries import FrameFilter, find_frames
from nightlog.catalogue.records import frame_record
from nightlog.cli.output import OutputFormat, emit
from nightlog.process_memory import peak_memory, reset_peak_memory

#: Above this many rows the listing is not also made as a list (it would hold them all).
LIST_BASELINE_ROWS = 200_000


def stream_figures(engine: Engine, out: Path) -> tuple[int, float, float, float, float]:
    """Every science frame of ten years written as ``nightlog frames --format json``
    does (records streamed in chunks), and as it did before (catalogue rows, a list of
    records, one ``json.dumps``; not above :data:`LIST_BASELINE_ROWS` rows, NaN then):
    rows, seconds and the growth of the process's peak resident memory (MB; Linux)
    of each, the streamed one first."""
    crit = FrameFilter(kind="science", newest_first=True)
    maker = make_sessionmaker(engine)
    figures = []
    with maker() as s:
        # The list holds every record and catalogue row at once (about 8 kB each).
        n_science = s.scalar(select(func.count()).select_from(Frame)
                             .where(Frame.kind == "science", Frame.is_latest.is_(True))) or 0
    for streamed in (True, False) if n_science <= LIST_BASELINE_ROWS else (True,):
        reset_peak_memory()
        before = peak_memory() or 0
        t = time.perf_counter()
        with maker() as s, out.open("w") as sink:
            if streamed:
                with contextlib.redirect_stdout(sink):
                    emit(iter_frame_records(s, crit), ("id",), OutputFormat.json)
            else:
                rows = [frame_record(f) for f in find_frames(s, crit)]
                sink.write(json.dumps(rows, default=str, ensure_ascii=False, indent=1) + "\n")
                del rows
        took = time.perf_counter() - t
        figures.append((took, ((peak_memory() or 0) - before) / 1e6))
    with out.open() as written:
        rows = sum(1 for line in written if line.startswith(" {"))
    out.unlink()
    baseline = figures[1] if len(figures) > 1 else (float("nan"), float("nan"))
    return rows, figures[0][0], figures[0][1], baseline[0], baseline[1]
