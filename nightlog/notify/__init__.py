"""Notifications: events sent as JSON to the configured webhooks, off the ingestion path.

:mod:`.config` (``[notify]`` settings), :mod:`.events` (the events and their
payloads), :mod:`.webhook` (one POST with a timeout and retries) and
:mod:`.notifier` (the background thread that drains the catalogue's outbox).
"""
