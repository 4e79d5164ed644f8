"""`python -m recforge ...` runs the command-line interface."""
from recforge.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
