"""The `backstop` command line: argument parsing and output only (shared parts in options.py)."""
