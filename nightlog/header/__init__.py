"""Header normalisation: raw FITS headers to :class:`NormalizedHeader` via instrument profiles."""
