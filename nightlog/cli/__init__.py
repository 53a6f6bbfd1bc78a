"""The typer command-line interface: a thin adapter over the library, one sub-app per file."""
