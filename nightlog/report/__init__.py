"""The night report: one self-contained HTML page of what a night produced.

:mod:`~nightlog.report.model` holds the page's content as plain values,
:mod:`~nightlog.report.thumbnails` turns an image array into a small zscale PNG
and :mod:`~nightlog.report.html` renders the page (its style sheet is
:mod:`~nightlog.report.style_sheet`'s). Nothing here opens a database or
a FITS file: :mod:`nightlog.coordinator.night_report` gathers the facts from the
catalogue, reads the images and hands the model over.
"""
