"""Put first on PYTHONPATH, this makes `fcntl` and `resource` unimportable in every Python process that starts: the
POSIX-only modules Windows lacks. tests/e2e/test_platforms.py runs the CLI, safety and revert tests so, to prove that
nothing ultrapatch needs to run a command is POSIX-only."""

import sys

sys.modules["fcntl"] = None  # `import fcntl` raises ImportError, as on Windows
sys.modules["resource"] = None
