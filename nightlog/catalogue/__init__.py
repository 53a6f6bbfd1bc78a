"""The catalogue: the database side of nightlog (the registry).

It knows frames, quarantined files and (later) masters, products and provenance.
It never opens a FITS file; the file store and the coordinating modules do that.
Functions here take a ``session`` owned by the caller and never commit.
"""
