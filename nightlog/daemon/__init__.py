"""The watch daemon: one long-lived loop over the batch jobs of the coordinator.

- :mod:`~nightlog.daemon.watch`: the loop (folder events, settling, ingestion,
  live master builds and quick-looks, the morning run);
- :mod:`~nightlog.daemon.options`: its options, from ``[watch]``;
- :mod:`~nightlog.daemon.heartbeat`: its row in the catalogue and its counters;
- :mod:`~nightlog.daemon.live_builds`: master builds under one lock across daemons;
- :mod:`~nightlog.daemon.morning`: when the morning reduction runs.

The daemon decides *when*; what is done is the coordinator's (ingest, build,
reduce), so a batch command and the daemon share every code path.
"""
