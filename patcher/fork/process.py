"""What every process of the fork side does first: its events on the real stdout (the fork's logging to stderr), the
fork imported and checked to be the tree's, and, on the CPU, a cap on its memory."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from pathlib import Path

from .checks import CHECKS
from .common import inside, release_of


def event_stream():
    """`emit(**event)`: one JSON line on the real stdout. Ultralytics logs to stdout, so file descriptor 1 goes to
    stderr from here on and the events keep a copy of the original for themselves."""
    events = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def emit(**event) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    return emit


def start(argv: list[str]):
    """An entry's opening: (emit, its spec read from the file argv[0] names, the fork's environment or None when the
    fork could not be opened: the event that says why is out)."""
    emit = event_stream()
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    return emit, spec, open_fork(spec, emit)


def open_fork(spec: dict, emit) -> dict | None:
    """Import torch and the fork at `spec["tree"]` (first on sys.path), check that it is the fork that was imported
    and that the device exists, and emit the `environment` event; None (with an `error` or `shadowed` event) when
    any of that fails."""
    tree = Path(spec["tree"]).resolve() if spec.get("tree") else None  # None: the Ultralytics the interpreter imports
    # What a script outside the tree imports (or what was imported at startup, by a .pth file or sitecustomize).
    preloaded = sys.modules.get("ultralytics")
    found = importlib.util.find_spec("ultralytics") if preloaded is None else None
    outside = preloaded.__file__ if preloaded is not None else (found.origin if found is not None else None)
    if tree is not None:
        sys.path.insert(0, str(tree))
    try:
        import torch
    except ImportError as exc:
        emit(event="error", kind="torch", message=f"{sys.executable} cannot import torch ({exc})")
        return None
    try:  # the fork and everything it imports at start-up: checked before any model runs
        import ultralytics
        import ultralytics.nn.tasks  # noqa: F401
        import ultralytics.models  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        if tree is None:
            emit(event="error", kind="import", message=(
                f"{sys.executable} cannot import Ultralytics: {exc}. Install your fork into that environment "
                f"(`{sys.executable} -m pip install -e PATH`), or give its folder with --tree PATH"
            ))  # fmt: skip
            return None
        emit(event="error", kind="import", message=(
            f"{sys.executable} cannot import the fork at {tree}: {exc} (the fork needs the module {missing!r}). "
            f"Install the fork with its requirements into that environment: `{sys.executable} -m pip install -e {tree}`"
        ))
        return None

    environment = {
        "release": ultralytics.__version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torch": torch.__version__,
        "numpy": sys.modules["numpy"].__version__ if "numpy" in sys.modules else None,
        "device": spec["device"],
        "threads": spec.get("threads") or torch.get_num_threads(),
        "ultralytics_file": ultralytics.__file__,
        "installed": outside,
        "checks": [check.name for check in CHECKS],
    }
    environment["root"] = str(tree or Path(ultralytics.__file__).resolve().parent.parent)
    for candidate in (ultralytics.__file__, outside) if tree is not None else ():
        if candidate is not None and not inside(candidate, tree):
            emit(event="shadowed", file=candidate, release=release_of(candidate), preloaded=preloaded is not None)
            return None
    if spec["device"] != "cpu":
        index = int(spec["device"])
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            emit(event="error", kind="device", message=f"CUDA device {index} is not available to torch {torch.__version__} in {sys.executable}")
            return None
        environment["device_name"] = torch.cuda.get_device_name(index)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    emit(event="environment", **environment)
    return environment


def limit_memory(limit: int | None) -> None:
    """Cap this process's data (heap and anonymous mappings) at `limit` bytes: past it an allocation fails with an
    error the check reports, instead of the kernel killing the process. CPU only (the parent passes None for CUDA,
    whose driver maps memory of its own); never raises a limit that is already lower."""
    if not limit:
        return
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
