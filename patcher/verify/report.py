"""verify's report: the models' verdicts and the stock check (`VerifyReport`, its JSON), the progress lines, and the
table a person reads. A verdict's cell comes from its status alone (`cell`), the environment's cause from the stock
model's own reason (`control`), never from a reason's words."""

from __future__ import annotations

from dataclasses import dataclass

from patcher.tree import Tree
from patcher.i18n import _


@dataclass
class VerifyReport:
    environment: dict
    models: list[dict]
    stock: dict | None = None  # the `stock` check (every stock YAML of the release); None when not run

    @property
    def ok(self) -> bool:
        return all(m["ok"] for m in self.models) and (self.stock is None or self.stock["status"] != "fail")

    def to_json(self) -> dict:
        env = self.environment
        return {
            "release": env.get("release"),
            "python": env.get("python"),
            "torch": env.get("torch"),
            "device": env.get("device"),
            "threads": env.get("threads"),
            "executable": env.get("executable"),
            "ultralytics_file": env.get("ultralytics_file"),
            "ok": self.ok,
            "models": self.models,
            "stock_models": self.stock,
        }


CELL = {"pass": "ok", "fail": "FAIL", "skip": "skip", "environment": "env"}


def cell(status: str) -> str:
    """A verdict's cell in the table and on the progress lines."""
    return CELL.get(status, status)


def shadow_message(tree: Tree, python: str, event: dict) -> str:
    if event["preloaded"]:
        said = _(
            "the fork at {root} is shadowed: in {python}, ultralytics {release} from {file} is imported at startup (a "
            ".pth file or sitecustomize), so scripts run outside the fork and the `yolo` command never see its edits. "
            "Install the fork in that environment instead: `{python} -m pip install -e {root}` (and remove what loads "
            "the other copy at startup)."
        )
    else:
        said = _(
            "the fork at {root} is shadowed: in {python}, ultralytics {release} from {file} is what it imports, so "
            "scripts run outside the fork and the `yolo` command never see its edits. Install the fork in that "
            "environment instead: `{python} -m pip install -e {root}`."
        )
    return said.format(root=tree.root, python=python, release=event["release"], file=event["file"])


def progress_line(done: int, total: int, model: dict) -> str:
    bad = [f"{name}: {c['status']}" for name, c in model["checks"].items() if c["status"] in ("fail", "environment")]
    verdict = "ok" if model["ok"] and not bad else ("FAIL" if not model["ok"] else "ok")
    extra = f" ({'; '.join(bad)})" if bad else ""
    return _("[{done}/{total}] {name}: {verdict} in {seconds} s{extra}").format(
        done=done, total=total, name=model["name"], verdict=verdict, seconds=f"{model['seconds']:.1f}", extra=extra
    )


def _millions(n) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}M"


def _gflops(g) -> str:
    return "-" if g is None else f"{g:.1f}"


def _count(models) -> str:
    n = models if isinstance(models, int) else len(models)
    return _("{n} model").format(n=n) if n == 1 else _("{n} models").format(n=n)


def render_table(report: VerifyReport) -> str:
    """One row per model, one column per check; then every reason that is not a pass, and the verdict."""
    env = report.environment
    checks = list(report.models[0]["checks"]) if report.models else []  # in the order of the checks' table
    header = ["model", *checks, "params (stock)", "GFLOPs (stock)"]
    rows = [header]
    for m in report.models:
        stock = m["stock"]
        rows.append(
            [
                m["name"],
                *(cell(m["checks"][c]["status"]) for c in checks),
                f"{_millions(m['params'])} ({_millions(stock.get('params'))})",
                f"{_gflops(m['gflops'])} ({_gflops(stock.get('gflops'))})",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        _("Ultralytics {release} with Python {python}, torch {torch}, device {device}; stock models in brackets").format(
            release=env.get("release"), python=env.get("python"), torch=env.get("torch"), device=env.get("device")
        )
    ]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    failures = [
        f"  {m['name']}: {name}: {c['reason']}"
        for m in report.models
        for name, c in m["checks"].items()
        if c["status"] == "fail"
    ]
    environment: dict[tuple[str, str], list[str]] = {}
    for m in report.models:
        for name, c in m["checks"].items():
            if c["status"] == "environment":
                cause = c.get("control") or c["reason"]  # the stock model's own reason, where it failed too
                environment.setdefault((name, cause), []).append(m["name"])
    skips: dict[str, tuple[list[str], set[str]]] = {}  # reason: (checks, models)
    for m in report.models:
        for name, c in m["checks"].items():
            if c["status"] == "skip":
                checks, models = skips.setdefault(c["reason"], ([], set()))
                if name not in checks:
                    checks.append(name)
                models.add(m["name"])
    if failures:
        lines += ["", _("failed:"), *failures]
    if environment:
        lines += ["", _("environment (the stock model fails the same check, so the patch is not the cause):")]
        lines += [_("  {checks} ({models}): {reason}").format(checks=check, models=_count(models), reason=cause)
                  for (check, cause), models in environment.items()]  # fmt: skip
    if skips:
        lines += ["", _("skipped:"), *(_("  {checks} ({models}): {reason}").format(checks=", ".join(c), models=_count(len(m)), reason=reason)
                                       for reason, (c, m) in skips.items())]  # fmt: skip
    if report.stock is not None:
        verdict = {"pass": "ok", "fail": "FAIL", "skip": _("skipped")}[report.stock["status"]]
        lines += ["", _("stock models: {verdict}: {reason}").format(verdict=verdict, reason=report.stock["reason"])]
    failed = sum(not m["ok"] for m in report.models)
    passed, total = len(report.models) - failed, len(report.models)
    if failed:
        lines += ["", _("{passed} of {total} model(s) pass; {failed} fail").format(passed=passed, total=total, failed=failed)]
    else:
        lines += ["", _("{passed} of {total} model(s) pass").format(passed=passed, total=total)]
    return "\n".join(lines)
