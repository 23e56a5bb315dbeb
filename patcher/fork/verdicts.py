"""A check's verdict: its status, the reason for the person, and the cause the code decides by."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ENVIRONMENT = "environment"  # it fails, and so does the stock model: the interpreter's or the release's, not the patch's


class Cause(str, Enum):
    NONE = "none"  # a pass
    FINDING = "finding"  # the check found a fault of the model
    ERROR = "error"  # the check stopped on an exception
    ENVIRONMENT = "environment"  # a package the interpreter lacks, or a failure the stock model shares
    KNOWN_LIMIT = "known-limit"  # a limit of the release in this environment: the check has nothing to prove
    NOT_APPLICABLE = "not-applicable"  # the check is not for this model


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str = ""
    cause: Cause = Cause.NONE
    control: str = ""  # when the stock model fails the check too: its own reason

    def to_json(self, seconds: float) -> dict:
        data = {"status": self.status.value, "reason": self.reason, "cause": self.cause.value, "seconds": seconds}
        if self.control:
            data["control"] = self.control
        return data
