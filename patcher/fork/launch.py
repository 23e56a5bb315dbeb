"""The one way into the fork side: `python launch.py ENTRY [ARGS...]` in the fork's interpreter.

Python puts this file's folder first on sys.path when it runs it; that entry is taken out again, so that no module of
this folder is ever a top-level name there. The folder is loaded as the package `ultrapatch_fork` and ENTRY's module
(`verify`, `probe`, `stock`, `bench`, `carry`, `ddp`) gets the remaining arguments; its `main` returns the exit status.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

ENTRIES = ("verify", "probe", "stock", "bench", "carry", "ddp", "reload", "roles", "table")
PACKAGE = "ultrapatch_fork"


def load() -> None:
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    spec = importlib.util.spec_from_file_location(PACKAGE, here / "__init__.py", submodule_search_locations=[str(here)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)


def main(argv: list) -> int:
    if not argv or argv[0] not in ENTRIES:
        print(f"usage: launch.py {{{','.join(ENTRIES)}}} [ARGS...]", file=sys.stderr)
        return 2
    load()
    return importlib.import_module(f"{PACKAGE}.{argv[0]}").main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
