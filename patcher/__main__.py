"""`python -m patcher` runs the `ultrapatch` command."""

from patcher.cli import main

if __name__ == "__main__":
    main()
