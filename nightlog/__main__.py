"""``python -m nightlog`` runs the command-line interface."""

from nightlog.cli.app import main

main()
