"""`python -m auditor`: the `backstop-audit` command line."""

from auditor.cli import main

if __name__ == "__main__":
    main(prog_name="backstop-audit")
