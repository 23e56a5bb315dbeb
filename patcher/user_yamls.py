"""Model YAMLs of the user's, on ultrapatch's side: reading one (`--yaml FILE`), the stock YAML a name resolves to,
where `apply --yaml` installs one, and which of its modules the tree does not define.

Which names the tree defines is read from the text of `ultralytics/nn/tasks.py` (after the apply's own edits), as
parse_model looks them up in its module's namespace: every name bound at its top level, and what its star imports
bring (the imported module's `__all__`, else its public names). `nn.X` and `torchvision.ops.X` rows are torch's.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from patcher.backbones import BACKBONES
from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.fork import yamlfile
from patcher.tree import Tree

CONFIG = "ultralytics/cfg/models"
TASKS = "ultralytics/nn/tasks.py"


def read_yaml(file: Path, option: str = "--yaml") -> tuple[yamlfile.ModelYaml, str]:
    """The user's YAML, parsed, and its text; bad input (exit 2) for a file that is missing, unreadable or no model
    YAML at all."""
    if not file.is_file():
        raise UltrapatchError(_("{option} {file}: no such file; give the path of your model YAML.").format(option=option, file=file))
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UltrapatchError(_("{option} {file}: cannot be read as UTF-8 text ({error}); save it as UTF-8.").format(option=option, file=file, error=exc)) from None
    doc = yamlfile.parse(text, file.name)
    if not doc.rows:
        raise UltrapatchError(f"{option} {file}: {doc.problems[0] if doc.problems else _('it has no layers')}.")
    return doc, text


def stock_file(tree: Tree, name: str) -> Path | None:
    """The tree's stock YAML that Ultralytics builds `name` from (`yolo11s-seg.yaml` is `yolo11-seg.yaml`), or None."""
    stem = Path(name).stem
    unified = re.sub(r"(\d+)([nslmxb])(.+)?$", r"\1\3", stem)
    for candidate in (unified, stem):
        found = sorted((tree.root / CONFIG).glob(f"**/{candidate}.yaml"))
        if found:
            return found[0]
    return None


def install_path(tree: Tree, file: Path, doc: yamlfile.ModelYaml) -> str:
    """Where `apply --yaml` puts the file: its family's config folder, under its own name."""
    family = doc.family()
    if family is None:
        raise UltrapatchError(
            _(
                "--yaml {file}: its name names no model family (yolo11-..., yolov8-..., rtdetr-...), so Ultralytics can "
                "tell neither its config folder nor its scale; rename it, e.g. yolo11-{name}, and apply again."
            ).format(file=file, name=file.name)
        )
    stock = stock_file(tree, "rtdetr-l.yaml" if family == "rtdetr" else f"{family}.yaml")
    if stock is None:
        raise UltrapatchError(
            _("--yaml {file}: Ultralytics {release} has no {family} models to put it beside.").format(file=file, release=tree.release_text, family=family)
        )
    return stock.parent.relative_to(tree.root).joinpath(file.name).as_posix()


def defined_names(tree: Tree, tasks_text: str) -> set[str]:
    """The names parse_model can look up in tasks.py's namespace."""
    return _bound(tree, ast.parse(tasks_text), depth=0)


def ultralytics_names(tree: Tree, tasks_text: str) -> set[str]:
    """The names Ultralytics itself uses for modules: tasks.py's namespace but what it imports from AddModules, and
    everything `ultralytics.nn.modules` exports (CBAM is there, though tasks.py does not import it)."""
    module = ast.parse(tasks_text)
    module.body = [
        node for node in module.body
        if not (isinstance(node, ast.ImportFrom) and "AddModules" in (node.module or ""))
    ]  # fmt: skip
    exported = _star(tree, ast.ImportFrom(module="ultralytics.nn.modules", names=[ast.alias("*")], level=0), depth=0)
    return _bound(tree, module, depth=0) | exported


def _bound(tree: Tree, module: ast.Module, depth: int) -> set[str]:
    names: set[str] = set()
    for node in _top_level(module.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    names |= _star(tree, node, depth)
                else:
                    names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _top_level(body: list) -> list:
    """The statements at a module's top level, through `try:` and `if` blocks (the releases import inside them)."""
    found = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.Try):
            found += _top_level(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
        elif isinstance(node, ast.If):
            found += _top_level(node.body + node.orelse)
    return found


def _star(tree: Tree, node: ast.ImportFrom, depth: int) -> set[str]:
    """What `from X import *` brings: X's `__all__`, else its public names (X a module of the tree)."""
    if depth > 3 or not node.module:
        return set()
    base = tree.root / node.module.replace(".", "/")
    file = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    if not file.is_file():
        return set()
    module = ast.parse(file.read_text(encoding="utf-8"))
    for stmt in module.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets):
            try:
                return set(ast.literal_eval(stmt.value))
            except ValueError:
                break
    return {n for n in _bound(tree, module, depth + 1) if not n.startswith("_")}


def installers(tree: Tree) -> dict[str, str]:
    """Every module name ultrapatch ships, with the apply command that installs it."""
    root = shlex.quote(str(tree.root))
    found = {variant: f"ultrapatch apply {root} --backbone {b.name}" for b in BACKBONES.values() for variant in b.variants}
    found["TimmBackbone"] = f"ultrapatch apply {root} --backbone timm:NAME"
    return found


def refuse_missing_modules(tree: Tree, file: Path, doc: yamlfile.ModelYaml, tasks_text: str) -> None:
    """Bad input, with each module's name and how to get it, when the YAML uses a module the tree will not define."""
    names = defined_names(tree, tasks_text)
    missing = [m for m in doc.modules() if not m.startswith(("nn.", "torchvision.ops.")) and m not in names]
    if not missing:
        return
    known = installers(tree)
    how = [
        f"{m} (`{known[m]} --yaml {shlex.quote(str(file))}` installs it)" if m in known
        else f"{m} (no backbone of ultrapatch's: import its class into {TASKS}, or check its spelling)"
        for m in missing
    ]  # fmt: skip
    raise UltrapatchError(_("--yaml {file} uses modules this tree does not define: {how}. Nothing was written.").format(file=file, how="; ".join(how)))


def asked_yamls(tree: Tree, files: tuple[Path, ...]) -> tuple[dict[str, str], list[tuple[Path, yamlfile.ModelYaml]]]:
    """`apply --yaml FILE...`: where each file goes (installed path: its text), and the files, read."""
    wanted: dict[str, str] = {}
    read = []
    for file in files:
        doc, text = read_yaml(file)
        rel = install_path(tree, file, doc)
        if rel in wanted:
            raise UltrapatchError(_("--yaml {file}: two of the files given are named {name}; give each its own name.").format(file=file, name=file.name))
        wanted[rel] = text
        read.append((file, doc))
    return wanted, read
