"""`verify --yaml FILE`: a model YAML of the user's, anywhere on disk, and the stock model it is compared with.

The control is the stock model of the same family, task and scale, found as Ultralytics itself would guess them: the
family from the file name (`yolo11-p2-ema.yaml` is YOLO11), the task from the head's module (else the name's `-seg`,
`-pose`, `-obb`, `-cls`), the scale from the letter in the name (else the YAML's first). `--against NAME` names it
instead. A YAML whose family cannot be told is verified without a control, and the run says how to name one.
"""

from __future__ import annotations

from pathlib import Path

from patcher.backbones import TASK_SUFFIX
from patcher.errors import UltrapatchError
from patcher.i18n import _
from patcher.fork import yamlfile
from patcher.tree import Tree
from patcher.user_yamls import CONFIG, read_yaml, stock_file
from patcher.verify.select import ModelSpec

def guessed_stock(tree: Tree, doc: yamlfile.ModelYaml) -> str | None:
    """The stock model of the YAML's family, task and scale, where the tree has one."""
    family = doc.family()
    if family is None:
        return None
    if family == "rtdetr":
        stem = Path(doc.path).stem
        name = next((f"{s}.yaml" for s in ("rtdetr-resnet101", "rtdetr-resnet50", "rtdetr-x", "rtdetr-l") if stem.startswith(s)), "rtdetr-l.yaml")
    else:
        name = f"{family}{doc.scale() or ''}{TASK_SUFFIX[doc.task()]}.yaml"
    return name if stock_file(tree, name) is not None else None


def check_against(tree: Tree, against: str, doc: yamlfile.ModelYaml, file: Path) -> str:
    """`--against NAME`: a stock YAML of the tree, of the same builder as the user's; bad input otherwise."""
    name = against if against.endswith((".yaml", ".yml")) else f"{against}.yaml"
    found = stock_file(tree, name)
    if found is None:
        raise UltrapatchError(
            _(
                "--against {against}: no such model YAML in {folder}; give a stock model's name, such as "
                "yolo11s-seg.yaml (a scale letter after the family picks the scale)."
            ).format(against=against, folder=tree.root / CONFIG)
        )
    theirs = yamlfile.parse(found.read_text(encoding="utf-8"), name)
    if theirs.builder() != doc.builder():
        raise UltrapatchError(
            _("--against {against} is built by {theirs}() and {file} by {ours}(): compare a model with one of its own kind.").format(
                against=against, theirs=theirs.builder(), file=file, ours=doc.builder()
            )
        )
    return name


def own_specs(tree: Tree, files: tuple[Path, ...], against: str | None) -> tuple[list[ModelSpec], list[str]]:
    """A ModelSpec per `--yaml FILE`, and the notes for the run (a YAML verified without a stock model)."""
    specs, notes = [], []
    for file in files:
        path = file.expanduser().resolve()
        doc, _text = read_yaml(path)
        stock = check_against(tree, against, doc, file) if against else guessed_stock(tree, doc)
        if stock is None:
            notes.append(
                _(
                    "note: {file}: no stock model to compare with (its file name names no family of this release, "
                    "such as yolo11-...); name one: --against yolo11n.yaml"
                ).format(file=file)
            )
        inside = path.is_relative_to(tree.root.resolve())
        family = doc.family() or (Path(stock).stem.split("-")[0] if stock else path.stem)
        specs.append(ModelSpec(
            yaml=path.relative_to(tree.root.resolve()).as_posix() if inside else str(path), name=str(path),
            family=family, task=doc.task(), builder=doc.builder(), variant=path.stem, stock=stock, own=True,
            label=path.name,
        ))  # fmt: skip
    return specs, notes


def recorded_specs(tree: Tree, yamls: list[str], matches) -> list[ModelSpec]:
    """The user's YAMLs that `apply --yaml` installed (`yamls`, paths in the tree), each at its first scale, or at
    every scale whose name (`yolo11s-p2.yaml`) `matches` when the file's own name does not."""
    from patcher.verify.select import scaled_name

    specs = []
    for rel in yamls:
        path = tree.root / rel
        if not path.is_file():
            continue
        doc, _text = read_yaml(path)
        scales = list(doc.scales) if doc.family() not in (None, "rtdetr") and not doc.scale_in_name() else []
        wanted = [None] if matches(path.name) else [s for s in scales if matches(scaled_name(path.name, s))]
        for scale in wanted:
            name = scaled_name(path.name, scale) if scale else path.name
            scaled = yamlfile.parse(path.read_text(encoding="utf-8"), name)
            specs.append(ModelSpec(
                yaml=rel, name=name, family=doc.family() or path.stem, task=doc.task(), builder=doc.builder(),
                variant=path.stem, stock=guessed_stock(tree, scaled), own=True,
            ))  # fmt: skip
    return specs
