"""A model YAML as parse_model reads it, with the line of every row: its layers (their index, `from`, repeats, module
and arguments as written), its scales, its head, and the structural mistakes that can be found before anything is
built, each with its line.

Pure Python and PyYAML (which Ultralytics itself needs): ultrapatch's side reads YAMLs with it too (`apply --yaml`,
`verify --yaml`), and the fork side's `yaml` check runs it with the fork's own module names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from .i18n import _

# Heads that predict at several strides (their `from` lists one map per level), and the classifier's: a substring of
# the module's name in lower case, as Ultralytics' own guess of a YAML's task reads it.
LEVEL_HEADS = ("detect", "segment", "pose", "obb", "rtdetrdecoder")
STOCK_LEVELS = 3  # P3, P4 and P5: what every stock detection-family head reads
BACKBONE_SLOTS = 5  # a backbone row returns P1-P5 and takes five layer indices (its own and four BackboneMap layers)
VERSION = re.compile(r"^(yolo(?:e-)?v?\d+)([nslmxb])?")  # the family in a file name, and the scale letter after it


@dataclass(frozen=True)
class Row:
    """One layer of the YAML: its index (parse_model's numbering), section, line, and the four fields as written."""

    index: int
    section: str
    line: int
    source: Any  # `from`
    repeats: Any
    module: Any
    args: Any

    def describe(self) -> str:
        """'layer 7 (EMA, from 6, args [256])': how a message names the row."""
        return f"layer {self.index} ({self.module}, from {_flow(self.source)}, args {_flow(self.args)})"

    def short(self) -> str:
        return f"layer {self.index} ({self.module}, from {_flow(self.source)})"


@dataclass
class ModelYaml:
    """A parsed model YAML: its rows, scales (letter: [depth, width, max_channels]) and their lines, and `nc`."""

    path: str
    data: dict
    rows: list[Row] = field(default_factory=list)
    scales: dict[str, Any] = field(default_factory=dict)
    scale_lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # mistakes of the file's shape, found while reading it
    shown: str = ""  # how messages name the file (its path)

    @property
    def head(self) -> Row | None:
        return self.rows[-1] if self.rows else None

    def row(self, index: int) -> Row | None:
        return next((r for r in self.rows if r.index == index), None)

    def family(self) -> str | None:
        """The family the file name declares (yolo11, yolov8, yolo26, rtdetr), as Ultralytics reads it."""
        stem = Path(self.path).stem
        if stem.startswith("rtdetr"):
            return "rtdetr"
        match = VERSION.match(stem)
        return match.group(1) if match else None

    def scale_in_name(self) -> str | None:
        match = VERSION.match(Path(self.path).stem)
        return match.group(2) if match else None

    def scale(self) -> str | None:
        """The scale Ultralytics builds the file at: the letter in its name, else the first the YAML declares."""
        return self.scale_in_name() or next(iter(self.scales), None)

    def task(self) -> str:
        """The task, by Ultralytics' own guess: the head's module name, else the file name's suffix, else detect."""
        name = str(self.head.module).lower() if self.head else ""
        if name in {"classify", "classifier", "cls", "fc"}:
            return "classify"
        for word, task in (("detect", "detect"), ("segment", "segment"), ("pose", "pose"), ("obb", "obb")):
            if word in name:
                return task
        stem = Path(self.path).stem
        for suffix, task in (("-seg", "segment"), ("-cls", "classify"), ("-pose", "pose"), ("-obb", "obb")):
            if suffix in stem:
                return task
        return "detect"

    def builder(self) -> str:
        return "RTDETR" if self.head is not None and str(self.head.module) == "RTDETRDecoder" else "YOLO"

    def modules(self) -> list[str]:
        """The module names the rows use, once each, in order."""
        return list(dict.fromkeys(str(r.module) for r in self.rows))


def _flow(value: Any) -> str:
    """A value as the YAML's flow style writes it: [-1, 6], None, "nearest"."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str) and not value.isidentifier():
        return f'"{value}"'
    return str(value)


def parse(text: str, path: str) -> ModelYaml:
    """Read a model YAML; mistakes of its shape go to `problems` (a file that is no YAML at all has only that).
    PyYAML is imported here: the fork side's first act is to say which of the fork's requirements are missing."""
    import yaml

    text = re.sub(r"[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]+", "", text)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return ModelYaml(path, {}, problems=[f"{where}the file is not valid YAML ({problem})"], shown=path)
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        return ModelYaml(path, {}, problems=[_("the file is not a model YAML: it has no `backbone:` and `head:` lists")], shown=path)
    doc = ModelYaml(path, data, shown=path)
    nodes = {key.value: value for key, value in node.value if isinstance(key, yaml.ScalarNode)}
    index = 0
    for section in ("backbone", "head"):
        rows, rows_node = data.get(section), nodes.get(section)
        if not isinstance(rows, list) or not isinstance(rows_node, yaml.SequenceNode):
            doc.problems.append(_("the YAML has no `{section}:` list of rows").format(section=section))
            continue
        for value, row_node in zip(rows, rows_node.value):
            line = row_node.start_mark.line + 1
            if not isinstance(value, list) or len(value) != 4:
                got = _("{count} item(s)").format(count=len(value)) if isinstance(value, list) else repr(value)
                doc.problems.append(
                    _("line {line}: layer {index}: a row is [from, repeats, module, args]; this one has {got}").format(line=line, index=index, got=got)
                )
                value = (list(value) + [None] * 4)[:4] if isinstance(value, list) else [None] * 4
            doc.rows.append(Row(index, section, line, *value))
            index += 1
    _read_scales(doc, nodes.get("scales"))
    return doc


def _read_scales(doc: ModelYaml, node) -> None:
    import yaml

    scales = doc.data.get("scales")
    if scales is None:
        return
    if not isinstance(scales, dict) or not isinstance(node, yaml.MappingNode):
        doc.problems.append(
            _("line {line}: `scales:` is a table of letter: [depth, width, max_channels]").format(line=node.start_mark.line + 1 if node else "?")
        )
        return
    lines = {str(key.value): value.start_mark.line + 1 for key, value in node.value}
    for letter, values in scales.items():
        doc.scales[str(letter)], doc.scale_lines[str(letter)] = values, lines.get(str(letter), 0)
        good = isinstance(values, list) and len(values) == 3 and all(isinstance(v, (int, float)) and v > 0 for v in values)
        if not good:
            count = _("{count} value(s)").format(count=len(values)) if isinstance(values, list) else repr(values)
            doc.problems.append(
                _("line {line}: scale {letter} has {count}; a scale row is [depth, width, max_channels], three positive numbers").format(
                    line=lines.get(str(letter), "?"), letter=letter, count=count
                )
            )


def layer_indices(doc: ModelYaml, is_backbone: Callable[[str], bool]) -> None:
    """Renumber the rows as parse_model numbers layers: a backbone row (one that returns P1-P5) takes five indices."""
    index = 0
    for k, row in enumerate(doc.rows):
        doc.rows[k] = Row(index, row.section, row.line, row.source, row.repeats, row.module, row.args)
        index += BACKBONE_SLOTS if isinstance(row.module, str) and is_backbone(row.module) else 1


def findings(
    doc: ModelYaml, defined: Callable[[str], bool], missing_hint: Callable[[str], str], stock_levels: int | None = None
) -> list[str]:
    """Every structural mistake of the YAML, each with its line: its shape, `from` indices that point forward or out
    of range, modules the fork does not define, a head that reads fewer maps than it predicts at, a scale the file
    name asks for that the YAML lacks. `missing_hint(name)` says how to get a missing module."""
    found = list(doc.problems)
    count = (doc.rows[-1].index + 1) if doc.rows else 0
    for row in doc.rows:
        found += _from_findings(row, count)
        if not isinstance(row.repeats, int) or isinstance(row.repeats, bool) or row.repeats < 1:
            found.append(_("line {line}: {row}: repeats must be a whole number of at least 1, not {value}").format(line=row.line, row=row.short(), value=repr(row.repeats)))
        if not isinstance(row.module, str) or not row.module:
            found.append(_("line {line}: layer {index}: the module must be a name, not {value}").format(line=row.line, index=row.index, value=repr(row.module)))
        elif not defined(row.module):
            found.append(
                _("line {line}: {row}: the module {module} is not defined in this fork{hint}").format(
                    line=row.line, row=row.short(), module=row.module, hint=missing_hint(row.module)
                )
            )
        if row.args is not None and not isinstance(row.args, list):
            found.append(_("line {line}: {row}: args must be a list, such as [256] or [], not {value}").format(line=row.line, row=row.short(), value=repr(row.args)))
    found += _head_findings(doc, stock_levels)
    letter = doc.scale_in_name()
    if letter and doc.scales and letter not in doc.scales:
        found.append(
            _("the file name asks for scale {letter} ({file}), and the YAML's scales are {scales}: Ultralytics stops with a KeyError").format(
                letter=letter, file=Path(doc.path).name, scales=", ".join(doc.scales)
            )
        )
    return found


def _from_findings(row: Row, count: int) -> list[str]:
    sources = row.source if isinstance(row.source, list) else [row.source]
    found = []
    for j in sources:
        if not isinstance(j, int) or isinstance(j, bool):
            found.append(
                _("line {line}: layer {index}: `from` must be a layer index or a list of them, not {value}").format(line=row.line, index=row.index, value=repr(row.source))
            )
        elif j >= count:
            found.append(_("line {line}: {row}: `from` {j} is out of range: the YAML has layers 0-{last}").format(line=row.line, row=row.short(), j=j, last=count - 1))
        elif j >= row.index:
            said = _("line {line}: {row}: `from` {j} refers to itself; a layer reads only earlier ones") if j == row.index else _(
                "line {line}: {row}: `from` {j} refers to a later layer; a layer reads only earlier ones")  # fmt: skip
            found.append(said.format(line=row.line, row=row.short(), j=j))
        elif j < 0 and row.index + j < 0 and not (row.index == 0 and j == -1):
            found.append(_("line {line}: {row}: `from` {j} reaches before layer 0").format(line=row.line, row=row.short(), j=j))
    return found


def _head_findings(doc: ModelYaml, stock_levels: int | None) -> list[str]:
    head = doc.head
    if head is None or not isinstance(head.module, str):
        return []
    name = head.module.lower()
    inputs = len(head.source) if isinstance(head.source, list) else 1
    if name in {"classify", "classifier"} and isinstance(head.source, list) and len(head.source) > 1:
        return [_("line {line}: {row}: a Classify head reads one map, not {count}").format(line=head.line, row=head.short(), count=len(head.source))]
    wanted = stock_levels or STOCK_LEVELS
    if any(word in name for word in LEVEL_HEADS) and inputs < wanted:
        return [
            _(
                "line {line}: {row}: the head reads {inputs} map(s) where its family's stock head reads {wanted} (P3, P4, "
                "P5): it predicts at every level it reads, so each level needs its map (a P2 head reads 4)"
            ).format(line=head.line, row=head.short(), inputs=inputs, wanted=wanted)
        ]
    return []


def head_levels(text: str) -> int | None:
    """How many maps the head of a YAML text reads (the stock model's, for the comparison above)."""
    doc = parse(text, "stock.yaml")
    head = doc.head
    if head is None or doc.problems:
        return None
    return len(head.source) if isinstance(head.source, list) else 1
