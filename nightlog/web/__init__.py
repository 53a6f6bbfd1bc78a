"""The live web view of an archive (``nightlog serve``): tonight as it happens.

:func:`nightlog.web.app.create_app` builds the read-only ASGI app;
:mod:`nightlog.web.server` runs it on uvicorn. Importing this package imports
nothing else.
"""
