"""``python -m nightlog`` runs the command-line interface."""

from nightlog.cli.entry import main

main()
