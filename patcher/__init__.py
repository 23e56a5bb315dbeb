"""ultrapatch: apply, verify and revert the lightweight-backbone tutorial edits on an Ultralytics source tree."""

__version__ = "0.2.0"

# The newest Ultralytics release the test-suite runs on; `ultrapatch fetch` defaults to it.
NEWEST_TESTED_RELEASE = "8.4.190"
