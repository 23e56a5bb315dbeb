"""A module file of the user's (`apply --module FILE.py[:Class=role,...]`): which of its classes are registered, and
by which role, read from the file's text without importing it.

A role says what parse_model must do with a row of the class (the fork's probe confirms it before anything is written):

- base: `(c1, c2, ...)`: input channels from the row's `from`, `c2` scaled by width and `max_channels`;
- repeat: `(c1, c2, n, ...)`: base, and the row's repeats passed as `n`;
- keep: `(c1, ...)`: output channels = input channels (attention, upsamplers);
- free: no channel argument (SimAM): what parse_model's last branch already does;
- c3k2: a subclass of C3k2: repeat, and C3k2's own m/l/x rule (c3k=True; on 8.4, `legacy = False`);
- multi: several inputs (`from` a list): BiFPN-style fusion; the probe measures how its output channels follow from
  its inputs' (their sum, the first's, the last's, or a `c2` argument), and whether it takes their channels at all;
- backbone: a class that sets `width_list` (or a subclass of one): built with no arguments, it returns its maps as a
  list, the last three at strides 8, 16 and 32. It gets what a shipped backbone gets: parse_model's backbone branch
  and a YAML per family and task, named after the class.

The registered classes are the file's `__all__`, else its public `nn.Module` classes; a class whose name Ultralytics
already uses (a tutorial file's own `Conv`) stays the file's private helper. `Class=role` names exactly the classes to
register. Heads and losses are not installed this way (yet): they are refused with what to do.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from patcher.backbones import ADDMODULES_DIR
from patcher.errors import UltrapatchError
from patcher.i18n import N_, _

ROLES = ("base", "repeat", "keep", "free", "multi", "c3k2", "backbone")
LIST_NAMES = {"inc", "in_channels_list", "channels_list", "c1s", "ch_list", "chs", "inc_list", "in_chs_list", "dims"}
JOINS = re.compile(r"Concat|BiFPN|Fusion|Fuse|Add|Sum|Merge")  # a class that joins maps, by its name
KINDS = {  # what the probe measured of a multi-input module: how apply registers it (patcher/edits/module_roles.py)
    "multi-sum": N_("its inputs' channels as a list; its output: their sum"),
    "multi-first": N_("its inputs' channels as a list; its output: the first input's channels"),
    "multi-last": N_("its inputs' channels as a list; its output: the last input's channels"),
    "multi-arg": N_("its inputs' channels as a list, then c2 (scaled by width); its output: c2"),
    "join-sum": N_("no channel argument; its output: its inputs' channels summed"),
    "join-first": N_("no channel argument; its output: the first input's channels"),
}
IN_NAMES = {"c1", "c_in", "ch_in", "in_ch", "in_chs", "inp", "in_channels", "in_channel", "in_planes", "inplanes",
            "channel", "channels", "c", "ch", "dim", "in_dim", "gate_channels", "num_channels"}  # fmt: skip
OUT_NAMES = {"c2", "c_out", "ch_out", "out_ch", "out_chs", "oup", "out_channels", "out_channel", "planes", "out_dim"}
REPEAT_NAMES = {"n", "num", "repeats", "number", "num_blocks", "depth"}
HEADS = ("Detect", "Segment", "Pose", "OBB", "Classify", "RTDETRDecoder", "v10Detect", "WorldDetect")
MODULE_BASES = {"Module", "nn.Module", "torch.nn.Module"}
SPEC = re.compile(r"^(?P<file>.+?\.py)(?::(?P<roles>[A-Za-z_][\w]*=\w+(?:,[A-Za-z_][\w]*=\w+)*))?$")


@dataclass
class ModuleClass:
    name: str
    role: str | None  # None: undecided
    why: str  # how the role was found (or why it could not be)


@dataclass
class UserModule:
    """One module file: installed as `ultralytics/nn/AddModules/<stem>.py`, its classes registered by role."""

    stem: str
    text: str
    source: Path  # the file as given
    classes: list[ModuleClass] = field(default_factory=list)  # the registered ones
    helpers: list[str] = field(default_factory=list)  # nn.Module classes left unregistered (names Ultralytics uses)
    parts: dict[str, str] = field(default_factory=dict)  # unregistered classes the registered ones build -> which

    @property
    def path(self) -> str:
        return f"{ADDMODULES_DIR}/{self.stem}.py"

    @property
    def roles(self) -> dict[str, str]:
        return {c.name: c.role for c in self.classes if c.role}


def parse_spec(spec: str) -> tuple[Path, dict[str, str]]:
    """`FILE.py` or `FILE.py:Class=role,Class2=role`: the file and the roles named."""
    found = SPEC.match(spec)
    if found is None:
        raise UltrapatchError(
            _(
                "--module {spec}: give a Python file, optionally with roles: FILE.py or FILE.py:Class=role,Class2=role "
                "(roles: {roles})."
            ).format(spec=spec, roles=", ".join(ROLES))
        )
    named = dict(pair.split("=") for pair in found["roles"].split(",")) if found["roles"] else {}
    bad = [f"{name}={role}" for name, role in named.items() if role not in ROLES]
    if bad:
        raise UltrapatchError(_("--module {spec}: {bad}: a role is one of {roles}.").format(spec=spec, bad=", ".join(bad), roles=", ".join(ROLES)))
    return Path(found["file"]), named


def read_module(spec: str, ultralytics_names: set[str]) -> UserModule:
    """The module file `spec` names, with its registered classes and their guessed (or named) roles; bad input (exit 2,
    one sentence) for a file ultrapatch cannot install."""
    file, named = parse_spec(spec)
    if not file.is_file():
        raise UltrapatchError(_("--module {file}: no such file; give the path of the module's .py file.").format(file=file))
    if not file.stem.isidentifier():
        suggestion = re.sub(r"\W", "_", file.stem)
        raise UltrapatchError(
            _("--module {file}: {stem} is not a Python name, so it cannot be imported; rename the file, e.g. {suggestion}.py.").format(
                file=file, stem=repr(file.stem), suggestion=suggestion if suggestion[:1].isidentifier() else "_" + suggestion
            )
        )
    try:
        text = file.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except UnicodeDecodeError as exc:
        raise UltrapatchError(_("--module {file}: not UTF-8 text ({error}); save it as UTF-8.").format(file=file, error=exc)) from None
    except SyntaxError as exc:
        raise UltrapatchError(
            _("--module {file}: line {line}: it does not parse ({error}); fix it and apply again.").format(file=file, line=exc.lineno, error=exc.msg)
        ) from None
    classes = module_classes(tree)
    if not classes:
        raise UltrapatchError(_("--module {file}: it defines no nn.Module class; there is nothing to register.").format(file=file))
    return _registered(file, text, tree, classes, named, ultralytics_names)


def module_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """The file's top-level classes that are nn.Modules: based on nn.Module, on one of Ultralytics' modules (imported
    from it), or on another such class of the file."""
    imported = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith(("ultralytics", "torch")) for alias in node.names}  # fmt: skip
    found: dict[str, ast.ClassDef] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b) for b in node.bases}
            torch_nn = {b for b in bases if b.startswith(("nn.", "torch.nn."))}  # nn.Module, nn.Sequential, ...
            if bases & MODULE_BASES or torch_nn or bases & set(found) or bases & (imported - {"Module"}):
                found[node.name] = node
    return found


def _registered(file: Path, text: str, tree: ast.Module, classes: dict[str, ast.ClassDef], named: dict[str, str],
                ultralytics_names: set[str]) -> UserModule:  # fmt: skip
    listed = _all(tree)
    public = [name for name in classes if not name.startswith("_")]
    parts = {} if named or listed else _parts(public, classes)
    parts = {name: owner for name, owner in parts.items() if name not in ultralytics_names}  # those are helpers
    asked = list(named) or listed or [name for name in public if name not in parts]
    unknown = [name for name in asked if name not in classes]
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if any(name in functions for name in unknown):
        name = next(name for name in unknown if name in functions)
        made = _class_made_by(functions[name], classes)
        if made:
            said = _(
                "--module {file}: {name} is a function; parse_model builds classes (8.4's restricted loading refuses "
                "anything else): write each variant as a class (`class {name}({made})` whose __init__ passes {made} the "
                "arguments {name}() gives it), list the classes in __all__ and apply again."
            )
        else:
            said = _(
                "--module {file}: {name} is a function; parse_model builds classes (8.4's restricted loading refuses "
                "anything else): write each variant as a class, list the classes in __all__ and apply again."
            )
        raise UltrapatchError(said.format(file=file, name=name, made=made))
    if unknown:
        raise UltrapatchError(_("--module {file}: {names}: no nn.Module class of that name in the file.").format(file=file, names=", ".join(unknown)))
    explicit = set(named) | set(listed)
    clashing = [name for name in asked if name in ultralytics_names]
    if clashing and explicit & set(clashing):
        raise UltrapatchError(
            _(
                "--module {file}: {names} is a name Ultralytics already uses; registered, it would replace Ultralytics' "
                "own in every model. Rename the class (e.g. {example}) and apply again."
            ).format(file=file, names=", ".join(sorted(explicit & set(clashing))), example=f"{sorted(explicit & set(clashing))[0]}_{file.stem}")
        )
    module = UserModule(file.stem, text, file, helpers=[n for n in classes if n in clashing], parts=parts)
    for name in (n for n in asked if n not in clashing):
        node = classes[name]
        bases = {ast.unparse(b) for b in node.bases}
        if bases & set(HEADS) or name.endswith(("Detect", "Head")):
            raise UltrapatchError(
                _(
                    "--module {file}: {name} is a head; heads are not installed with --module yet (they change the loss "
                    "and the task): register it by hand, or leave it out with {file_name}:Class=role for the others."
                ).format(file=file, name=name, file_name=file.name)
            )
        if name.endswith("Loss") or any(b.endswith("Loss") for b in bases):
            raise UltrapatchError(
                _(
                    "--module {file}: {name} is a loss; losses are not layers of a YAML, and swapping one changes "
                    "ultralytics/utils/loss.py, which --module does not do yet. Leave it out with {file_name}:Class=role "
                    "for the others."
                ).format(file=file, name=name, file_name=file.name)
            )
        if name in named:
            role, why = named[name], _("named on the command line")
        elif "C3k2" in bases:
            role, why = "c3k2", _("a subclass of C3k2: registered as one, with its m/l/x rule")
        elif _is_backbone(node, classes):
            role, why = "backbone", _("it sets width_list: it returns its maps as a list")
        else:
            role, why = guess_role(node)
        module.classes.append(ModuleClass(name, role, why))
    if not module.classes:
        raise UltrapatchError(
            _("--module {file}: nothing left to register: Ultralytics already uses the names {names}.").format(
                file=file, names=", ".join(module.helpers)
            )
        )
    return module


def _all(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return [str(n) for n in ast.literal_eval(node.value)]
            except ValueError:
                return []
    return []


def _parts(public: list[str], classes: dict[str, ast.ClassDef]) -> dict[str, str]:
    """The public classes another class of the file builds (a block's `h_swish`, a backbone's stages): they are its
    parts, not layers of a YAML. Each maps to the first class that builds it. Deriving from a class is not building it.
    """
    found: dict[str, str] = {}
    for owner, node in classes.items():
        used = {n.id for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        for name in public:
            if name != owner and name in used:
                found.setdefault(name, owner)
    return found if len(found) < len(public) else {}


def _class_made_by(function: ast.FunctionDef, classes: dict[str, ast.ClassDef]) -> str | None:
    """The file's class a factory function builds (`model = StarNet(24, [1, 2, 6, 2]); return model`), or None."""
    called = [ast.unparse(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)]
    return next((name for name in called if name in classes), None)


def _is_backbone(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> bool:
    """Whether the class, or a class of the file it derives from, sets `self.width_list`."""
    sets = any(isinstance(t, ast.Attribute) and t.attr == "width_list" for n in ast.walk(node) if isinstance(n, ast.Assign) for t in n.targets)
    parents = (classes[b] for b in (ast.unparse(b) for b in node.bases) if b in classes and classes[b] is not node)
    return sets or any(_is_backbone(parent, classes) for parent in parents)


def guess_role(node: ast.ClassDef) -> tuple[str | None, str]:
    """The role the constructor's signature says, and why; (None, the candidates) where it says none clearly."""
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        return "free", _("it has no constructor of its own: no channel argument")
    params = [a.arg for a in init.args.posonlyargs + init.args.args][1:]
    first, second, third = (params + [None, None, None])[:3]
    shown = f"__init__({', '.join(params)})"
    annotation = ast.unparse(init.args.args[1].annotation) if len(init.args.args) > 1 and init.args.args[1].annotation else ""
    if first in LIST_NAMES or annotation.lower().startswith(("list", "tuple", "sequence")):
        return "multi", _("{shown}: its first argument is a list of input channels").format(shown=shown)
    if (not params or _has_default(init, 0)) and JOINS.search(node.name):
        return "multi", _("{shown}: no channel argument, and its name says it joins maps").format(shown=shown)
    if not params or first not in IN_NAMES and first not in OUT_NAMES:
        if params and _has_default(init, 0) or not params:
            return "free", _("{shown}: no channel argument").format(shown=shown)
        return None, _("{shown}: its first argument {first} is no channel count I know; candidates: base, keep, free").format(
            shown=shown, first=repr(first)
        )
    if second in OUT_NAMES:
        if third in REPEAT_NAMES:
            return "repeat", _("{shown}: input channels, output channels, repeats").format(shown=shown)
        return "base", _("{shown}: input and output channels").format(shown=shown)
    return "keep", _("{shown}: input channels only: its output keeps them").format(shown=shown)


def _has_default(init: ast.FunctionDef, index: int) -> bool:
    positional = init.args.posonlyargs + init.args.args
    return index + 1 >= len(positional) - len(init.args.defaults)


def install_modules(specs: tuple[str, ...], ultralytics_names: set[str]) -> list[UserModule]:
    """Every `--module` given, read; two files defining one registered class, or two files of one name, refused."""
    merged: dict[str, tuple[str, dict[str, str]]] = {}
    for spec in specs:  # `--module F.py:A=keep --module F.py:B=base` names roles of one file
        file, named = parse_spec(spec)
        key = str(file.resolve())
        merged[key] = (str(file), {**merged.get(key, ("", {}))[1], **named})
    modules = []
    for file, named in merged.values():
        spec = file + (":" + ",".join(f"{k}={v}" for k, v in named.items()) if named else "")
        modules.append(read_module(spec, ultralytics_names))
    seen: dict[str, str] = {}
    for module in modules:
        for cls in module.classes:
            if cls.name in seen:
                raise UltrapatchError(
                    _("--module: {first}.py and {second}.py both define {name}; give one of them.").format(
                        first=seen[cls.name], second=module.stem, name=cls.name
                    )
                )
            seen[cls.name] = module.stem
    stems = [m.stem for m in modules]
    if len(set(stems)) < len(stems):
        raise UltrapatchError(_("--module: two files have the same name; each is installed as AddModules/<name>.py: rename one."))
    return modules


EXAMPLE_ROWS = {
    "base": "[-1, 1, {name}, [256]]  # c2 first: scaled by width, like Conv's",
    "repeat": "[-1, 2, {name}, [256]]  # c2 first, repeats in the second field, like C2f's",
    "keep": "[-1, 1, {name}, []]  # its channels are the input's: no channel argument",
    "free": "[-1, 1, {name}, []]",
    "multi": "[[-1, 6], 1, {name}, []]  # the maps it joins, as a Concat's",
    "c3k2": "[-1, 2, {name}, [512, False]]  # as a C3k2 row: c2, then c3k (True from scale m on)",
    "backbone": "[-1, 1, {name}, []]  # the first row: its maps take 5 layer indices (P1-P5), as the installed YAMLs show",
}


def confirm_roles(tree, modules: list[UserModule], python: str) -> None:
    """Each class built and run by its role in the fork's interpreter (`patcher/fork/roles.py`): bad input, with what
    was seen and the syntax that names a role, where the role is undecided or its prediction fails."""
    from patcher.launcher import run_entry, tail

    spec = {"tree": str(tree.root), "device": "cpu", "threads": 1, "modules": [
        {"stem": m.stem, "file": str(m.source.resolve()), "classes": [[c.name, c.role] for c in m.classes]} for m in modules
    ]}  # fmt: skip
    events, stderr = run_entry(python, "roles", spec)
    if "roles" not in events:
        said = events.get("error", {}).get("message") or tail(stderr)
        raise UltrapatchError(_("--module: the module files could not be tried in {python}: {said}").format(python=python, said=said))
    for module in modules:
        _confirm(module, events["roles"]["files"][module.stem], python)


def _confirm(module: UserModule, found: dict, python: str) -> None:
    file = module.source
    if "import_error" in found:
        if found.get("missing"):
            raise UltrapatchError(
                _(
                    "--module {file} imports {missing}, which {python} cannot import: install it there (`{python} -m pip "
                    "install {missing}`) and apply again."
                ).format(file=file, missing=found["missing"], python=python)
            )
        raise UltrapatchError(_("--module {file} does not import in the fork: {error}.").format(file=file, error=found["import_error"]))
    for cls in module.classes:
        tried = found["classes"][cls.name]
        if cls.role is None:
            fits = [role for role, result in tried.items() if result["ok"]]
            raise UltrapatchError(
                _(
                    "--module {file}: the role of {name} cannot be told from {shown}; built and run, it fits {fits}. "
                    "Name it: {file_name}:{name}=ROLE (ROLE one of {roles})."
                ).format(
                    file=file, name=cls.name, shown=cls.why.split(":")[0], fits=", ".join(fits) or _("no role"),
                    file_name=file.name, roles=", ".join(fits or ROLES),
                )
            )
        result = tried[cls.role]
        if cls.role == "c3k2":
            _check_positional(module, cls.name, result["params"], python)
        if result["ok"] and cls.role == "multi":
            cls.role, cls.why = result["kind"], _("{why}; tried: {kind}").format(why=cls.why, kind=_(KINDS[result["kind"]]))
            continue
        if not result["ok"]:
            seen = result.get("error") or _("its output has {channels} channels, where {role} means {expected}").format(
                channels=result["channels"], role=cls.role, expected=result["expected"]
            )
            raise UltrapatchError(
                _(
                    "--module {file}: {name} as {role} ({why}): {built} fails: {seen}. Name its role with "
                    "{file_name}:{name}=ROLE ({roles}), or fix the class."
                ).format(
                    file=file, name=cls.name, role=cls.role, why=cls.why, built=result["built"], seen=seen,
                    file_name=file.name, roles=", ".join(r for r in ROLES if r not in (cls.role, "backbone")),
                )
            )


def _check_positional(module: UserModule, name: str, params: list[str], python: str) -> None:
    """A C3k2 subclass that hands its arguments to `C3k2.__init__` by position, with names that land on other
    parameters in this release (8.4 put `attn` before `g` and `shortcut`): refused, with the keywords to write. Passed
    so on 8.4, `g` turns attention on and `shortcut` becomes the groups of a convolution, far from the YAML line."""
    node = next(n for n in ast.parse(module.text).body if isinstance(n, ast.ClassDef) and n.name == name)
    calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "__init__"
             and ast.unparse(c.func.value) in ("super()", f"super({name}, self)", "C3k2")]  # fmt: skip
    for call in calls:
        given = [a for a in call.args if not isinstance(a, ast.Starred)]
        given = given[1:] if ast.unparse(call.func.value) == "C3k2" else given  # C3k2.__init__(self, ...)
        wrong = [(a.id, params[i]) for i, a in enumerate(given) if i < len(params) and isinstance(a, ast.Name)
                 and a.id != params[i] and a.id in params]  # fmt: skip
        if wrong:
            passed, lands = wrong[0]
            keywords = ", ".join(f"{a}={a}" for a, _ in wrong)
            raise UltrapatchError(
                _(
                    "--module {file}: {name} passes {passed} to C3k2.__init__ by position, where C3k2 in this release "
                    "({python}) takes {lands} (its parameters: {params}): pass {keywords} by keyword and apply again."
                ).format(file=module.source, name=name, passed=passed, python=python, lands=lands, params=", ".join(params), keywords=keywords)
            )


def describe(modules: list[UserModule]) -> list[str]:
    """What apply says of each file: every class, its role and why, an example YAML row, and the helpers left alone."""
    lines = []
    for module in modules:
        for cls in module.classes:
            role = cls.role.split("-")[0] if cls.role.startswith(("multi", "join")) else cls.role
            row = EXAMPLE_ROWS["multi" if role in ("multi", "join") else role].format(name=cls.name)
            if role == "backbone":
                lines.append(
                    _("module {file}: {name} as backbone ({why}); YAMLs for every family and task, e.g. {example}").format(
                        file=f"{module.stem}.py", name=cls.name, why=cls.why, example=f"YOLO('yolov8n-{cls.name}.yaml')"
                    )
                )
                continue
            lines.append(
                _("module {file}: {name} as {role} ({why}); a row: {row}").format(
                    file=f"{module.stem}.py", name=cls.name, role="multi" if role == "join" else role, why=cls.why, row=row
                )
            )
        for part, owner in module.parts.items():
            lines.append(
                _("module {file}: {part} stays a part of {owner}, not registered (list it in __all__ to register it too)").format(
                    file=f"{module.stem}.py", part=part, owner=owner
                )
            )
        for helper in module.helpers:
            lines.append(
                _("module {file}: {name} stays the file's own helper: Ultralytics has a {name} of its own, which every model keeps").format(
                    file=f"{module.stem}.py", name=helper
                )
            )
    return lines
