"""nightlog: calibration database and observing-night archive manager.

Importing the package does no work: no settings are read, no engine is created
and no logging is configured. Entry points (the CLI, the daemon) build those
and pass them down.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
