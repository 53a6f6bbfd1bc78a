"""The coordinator: the batch jobs that join the catalogue, the file store and the
reduction core.

The catalogue never opens FITS files, the store never imports SQLAlchemy and the
reduction core is pure; the jobs here read files through the store, compute with
the reduction core and record rows through the catalogue, in that order, so that a
failure never leaves a row without its file or a file under its final name without
its row (files are written under a temporary name and renamed, and deleted only
after the commit). The coordinator builds no row itself: the catalogue does.

Every job that takes time has one shape, **plan → job → record**: planned in the
coordinating process with the catalogue, run by any worker without it (a small
picklable job: files in, one file out), recorded in one transaction.

- :mod:`~nightlog.coordinator.ingest` (and :mod:`.discovery`): raw files become frames;
- :mod:`~nightlog.coordinator.masters` over :mod:`.master_plan` and
  :mod:`.master_job` (with :mod:`.master_measurements`, what a build measures on its
  frames): due groups become master calibrations;
- :mod:`~nightlog.coordinator.reduce` over :mod:`.reduce_plan`, :mod:`.reduce_job`,
  :mod:`.reduce_record` and :mod:`.reduce_dispatch`: science frames become products
  with provenance;
- :mod:`~nightlog.coordinator.night`: a night finished, due masters then its science
  frames, on one set of workers (:mod:`.executors`: this process, local processes or
  Dask);
- :mod:`.provenance`, :mod:`.provenance_check`, :mod:`.match_report`,
  :mod:`.night_report`: what the files and the catalogue say about the work.
"""
