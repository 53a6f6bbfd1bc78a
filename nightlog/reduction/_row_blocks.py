"""How many image rows a step of the reduction computes at once.

Its working rows then stay in cache (a 2048-column frame's 64 rows: 512 KiB in
float32, 1 MiB in float64) instead of going through frame-sized temporaries. Every
pixel gets the same operations either way. A module of its own, importing nothing,
so that every step (the bit plane's among them) can share the one value.
"""

__all__ = ["BLOCK_ROWS"]

#: Image rows computed at once.
BLOCK_ROWS = 64
