"""The coordinator: the one layer that joins the catalogue, the file store and the
reduction core.

The catalogue never opens FITS files, the store never imports SQLAlchemy and the
reduction core is pure; the modules here read files through the store, compute
with the reduction core and record rows through the catalogue, in that order, so
that a failure never leaves a row without its file or a file under its final name
without its row (files are written under a temporary name and renamed, and
deleted only after the commit).

- :mod:`~nightlog.coordinator.ingest`: raw files become frames;
- :mod:`~nightlog.coordinator.masters`: due groups become master calibrations;
- :mod:`~nightlog.coordinator.reduce`: science frames become products with provenance;
- :mod:`~nightlog.coordinator.night`: a night finished, due masters then its science frames.
"""
