"""`python -m auditor`: the `backstop-audit` command line."""

from auditor.cli import main

main(prog_name="backstop-audit")
