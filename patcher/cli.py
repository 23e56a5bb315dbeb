"""The `ultrapatch` command: one Click group, one function per subcommand.

Exit codes: 0 success (including "already applied"); 1 an edit could not be made, or `apply --check` found work to
do; 2 bad input or usage; 3 an unexpected internal error (its traceback goes to a log file).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

import click

from patcher import NEWEST_TESTED_RELEASE, __version__
from patcher.backbones import Backbone, check_timm_models, select_backbones
from patcher.edits.base import Status
from patcher.errors import EXIT_EDIT_FAILED, EXIT_INTERNAL
from patcher import i18n
from patcher.i18n import _
from patcher import records
from patcher import gitops, transaction
from patcher import applying, user_yamls
from patcher.applying import ApplyPlan, plan_apply
from patcher.planner import Plan
from patcher.tree import OLDEST_SUPPORTED, Tree, find_tree, format_version, parse_version

PATH_ARG = click.argument("path", type=click.Path(path_type=Path))
PYTHON_OPT = click.option(
    "--python", "python", default=sys.executable, show_default="this interpreter",
    help="The interpreter of the environment you train with.",
)


def _header(tree: Tree, backbones: tuple[Backbone, ...] = ()) -> str:
    if backbones:
        return _("Ultralytics {release} at {root} (backbones: {names})").format(
            release=tree.release_text, root=tree.root, names=", ".join(b.name for b in backbones)
        )
    return _("Ultralytics {release} at {root}").format(release=tree.release_text, root=tree.root)


def _warn_if_untested(tree: Tree) -> None:
    if tree.is_newer_than_tested:
        click.echo(
            _(
                "warning: Ultralytics {release} is newer than {newest}, the newest release ultrapatch is tested on; "
                "every edit still checks its own anchors."
            ).format(release=tree.release_text, newest=NEWEST_TESTED_RELEASE),
            err=True,
        )


def _echo_reports(plan: Plan, err: bool) -> None:
    width = max(len(r.edit.name) for r in plan.reports)
    for r in plan.reports:
        details = [r.detail] if r.detail and r.status is Status.NOT_IN_RELEASE else list(r.kept)
        detail = _(" ({detail})").format(detail=_("; ").join(details)) if details else ""
        click.echo(f"  {r.edit.name:<{width}}  {r.status.shown}{detail}", err=err)
    for r in plan.failed:
        click.echo(_("error: {edit}: {detail}").format(edit=r.edit.name, detail=r.detail), err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ultrapatch")
def cli() -> None:
    """Apply, verify and revert the lightweight-backbone tutorial edits on an Ultralytics source tree."""


@cli.command("list")
def list_() -> None:
    """Print the edits, in the order apply makes them, and the backbones."""
    from patcher.edits import list_edits

    click.echo(list_edits())


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--version", "version", default=NEWEST_TESTED_RELEASE, show_default=True, help="Ultralytics release.")
def fetch(dest: Path, version: str) -> None:
    """Download an Ultralytics source release from PyPI into DEST, as a git repository with one commit."""
    from patcher.fetch import exact_release, fetch as fetch_release

    version = exact_release(version)
    if parse_version(version) < OLDEST_SUPPORTED:
        click.echo(
            _(
                "note: Ultralytics {version} is older than {oldest}, the oldest release ultrapatch applies to: "
                "fetching it anyway, but apply will refuse it."
            ).format(version=version, oldest=format_version(OLDEST_SUPPORTED)),
            err=True,
        )
    commit = fetch_release(dest, version)
    click.echo(_("fetched Ultralytics {version} into {dest} (git commit {commit})").format(version=version, dest=dest, commit=commit[:10]))


@cli.command()
@PATH_ARG
@click.option("--backbone", "-b", "backbone_names", multiple=True, help="Backbone to install; repeat it, or 'all'.")
@click.option("--yaml", "yaml_files", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="A model YAML of yours to install in its family's config folder, where YOLO() finds it by name (repeatable).")
@click.option("--module", "module_specs", multiple=True, metavar="FILE.py[:Class=role,...]",
              help="A module file of yours (attention, a conv or CSP block) to install and register by role (repeatable).")
@click.option("--dry-run", is_flag=True, help="Write nothing; print the unified diff of what would change.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when something would change, 0 when nothing would.")
@click.option("--diff", "show_diff", is_flag=True, help="Also print the unified diff of what was written.")
@click.option("--commit", is_flag=True, help="Commit the changed files as one git commit (and revert commits the reverse).")
@click.option("--verify", "then_verify", is_flag=True, help="Then run `verify` on the models of these backbones.")
def apply(
    path: Path, backbone_names: tuple[str, ...], yaml_files: tuple[Path, ...], module_specs: tuple[str, ...],
    dry_run: bool, check: bool, show_diff: bool, commit: bool, then_verify: bool,
) -> None:
    """Make every tutorial edit on the Ultralytics tree at PATH, idempotently and all or nothing."""
    if not backbone_names and not yaml_files and not module_specs:
        raise click.UsageError(
            _(
                "give a backbone to install (--backbone NAME), a module file of yours (--module FILE.py) or a model "
                "YAML of yours (--yaml FILE)."
            )
        )
    if dry_run and check:
        raise click.UsageError(_("--dry-run prints the diff and --check only answers whether there is one: give one of them."))
    if (then_verify or commit) and (dry_run or check):
        raise click.UsageError(_("--verify and --commit act on an apply that writes; leave out --dry-run and --check."))
    backbones = select_backbones(backbone_names)
    tree = find_tree(path)
    tree.refuse_if_compromised()
    _warn_if_untested(tree)
    recorded = _recorded(tree)
    timm_note = check_timm_models(tuple(b for b in backbones if b.name not in recorded))
    if timm_note:
        click.echo(timm_note, err=True)
    modules = _asked_modules(tree, module_specs, err=dry_run or check)
    yamls, asked = user_yamls.asked_yamls(tree, yaml_files)
    if dry_run or check:
        _apply_without_writing(tree, plan_apply(tree, backbones, yamls, modules), asked, backbones, dry_run or show_diff, check)
        return
    with transaction.locked(tree.root, "apply"):
        _echo_recovered(tree)
        planned = plan_apply(tree, backbones, yamls, modules)
        _refuse_missing_modules(tree, planned, asked)
        click.echo(_header(tree, backbones))
        _refuse_failed(planned, err=False)
        if commit:
            gitops.check_can_commit(tree.root, sorted(planned.writes))
        for line in applying.notes(tree, planned):
            click.echo(line)
        applying.write(tree, planned)
        if show_diff:
            click.echo(planned.diff(), nl=False)
        files, plan = len(planned.writes), planned.plan
        counts = _(", ").join(
            _("{count} {state}").format(count=plan.count(s), state=s.shown) for s in (Status.APPLIED, Status.ALREADY, Status.NOT_IN_RELEASE)
        )
        click.echo(_("{counts}; wrote {files} file(s)").format(counts=counts, files=files) if files else _("{counts}; nothing to change").format(counts=counts))
        if commit and files:
            sha = applying.commit(tree, planned, backbones)[:10]
            click.echo(_("committed {files} file(s) as {sha}").format(files=files, sha=sha))
    if then_verify:
        _verify_applied(tree, backbones, yamls)


def _apply_without_writing(tree: Tree, planned: ApplyPlan, asked: list, backbones: tuple, show: bool, check: bool) -> None:
    """`--dry-run` and `--check`: the reports and the count on stderr, the diff alone on stdout (`git apply` reads
    it); exit 1 for `--check` with something to change."""
    _note_pending(tree)
    _refuse_missing_modules(tree, planned, asked)
    click.echo(_header(tree, backbones), err=True)
    _refuse_failed(planned, err=True)
    files = len(planned.writes)
    if show:
        click.echo(planned.diff(), nl=False)
    click.echo(_("would change {files} file(s)").format(files=files) if files else _("nothing to change"), err=True)
    if check and files:
        sys.exit(EXIT_EDIT_FAILED)


def _verify_applied(tree: Tree, backbones: tuple, yamls: dict) -> None:
    """`apply --verify`: the models of the backbones and the YAMLs this apply installed."""
    from patcher import verify as verifier
    from patcher.verify.own import own_specs

    click.echo("")
    specs = verifier.select_models(tree, backbones=list(backbones)) if backbones else []
    specs += own_specs(tree, tuple(tree.root / rel for rel in yamls), None)[0]
    _verify(tree, specs, sys.executable, "cpu", None, False)


def _asked_modules(tree: Tree, specs: tuple[str, ...], err: bool) -> tuple:
    """The `--module` files, read, their roles confirmed in the fork's interpreter, and said (class, role, why, a row)."""
    from patcher.edits.base import ModuleFile
    from patcher.user_modules import confirm_roles, describe, install_modules

    if not specs:
        return ()
    tasks = (applying.disk(tree, user_yamls.TASKS) or b"").decode("utf-8", errors="replace")
    read = install_modules(specs, user_yamls.ultralytics_names(tree, tasks))
    confirm_roles(tree, read, sys.executable)
    for line in describe(read):
        click.echo(line, err=err)
    # in the record's order (by name), so that the first apply's text is the one every later apply makes
    return tuple(sorted((ModuleFile(m.stem, m.text, tuple(m.roles.items())) for m in read), key=lambda f: f.stem))


def _refuse_missing_modules(tree: Tree, planned: ApplyPlan, asked: list) -> None:
    """Bad input when a --yaml file uses a module the tree will not define once the plan is written."""
    rel = user_yamls.TASKS
    text = planned.writes.get(rel) or applying.disk(tree, rel) or b""
    for file, doc in asked:
        user_yamls.refuse_missing_modules(tree, file, doc, text.decode("utf-8", errors="replace"))


def _recorded(tree: Tree) -> list[str]:
    """The backbones the record names: a timm model there was checked when it was first applied, and checking it
    again costs importing torch and timm (~4 s) on every re-apply. A damaged record names none (planning says why)."""
    try:
        record = records.load(tree.root)
    except records.DamagedRecord:
        return []
    return [] if record is None else record.backbones


def _refuse_failed(planned: ApplyPlan, err: bool) -> None:
    """Print the edits' reports; exit 1, before anything is written, when an edit failed or a merge conflicts."""
    _echo_reports(planned.plan, err=err)
    applying.refuse(planned)


def _note_pending(tree: Tree) -> None:
    """A dry run leaves an interrupted run as it is, and says so."""
    interrupted = transaction.pending(tree.root)
    if interrupted:
        click.echo(_("note: an interrupted {operation} will be completed by the next apply or revert").format(operation=interrupted), err=True)


def _echo_recovered(tree: Tree) -> str | None:
    """Complete a run that was killed, and say so; its operation."""
    done = transaction.recover(tree.root)
    if done is None:
        return None
    click.echo(_("note: completed an interrupted {operation} ({files} file(s))").format(operation=done.operation, files=len(done.writes)))
    return done.operation


@cli.command()
@PATH_ARG
@click.option("--backbone", "-b", "backbone_names", multiple=True, help="Take out only this backbone (repeatable).")
@click.option("--module", "module_names", multiple=True, metavar="NAME", help="Take out only this module file of yours, by its name without .py (repeatable).")
@click.option("--dry-run", is_flag=True, help="Write nothing; print the diff revert would make.")
@click.option("--force", is_flag=True, help=f"On a conflict, restore ultrapatch's originals, saving yours as <file>{records.BACKUP_SUFFIX}.")
def revert(path: Path, backbone_names: tuple[str, ...], module_names: tuple[str, ...], dry_run: bool, force: bool) -> None:
    """Take ultrapatch's edits out of the tree at PATH (all of them, or one backbone's), keeping yours."""
    from patcher import revert as reverting

    tree = find_tree(path)
    if dry_run:
        _note_pending(tree)
        plan = reverting.plan_revert(tree, backbone_names, tuple(n.removesuffix(".py") for n in module_names))
        for line in reverting.notes(plan) + reverting.stranded_notes(tree, plan):
            click.echo(line, err=True)
        click.echo(plan.diff(), nl=False)
        for rel, where in plan.conflicts.items():
            click.echo(_("conflict: {file}: {where}").format(file=rel, where=", ".join(where)), err=True)
        return
    with transaction.locked(tree.root, "revert"):
        if _echo_recovered(tree) == "revert" and records.load(tree.root) is None:
            click.echo(_("Ultralytics {release} at {root}: reverted everything").format(release=tree.release_text, root=tree.root))
            return
        plan = reverting.plan_revert(tree, backbone_names, tuple(n.removesuffix(".py") for n in module_names))
        for line in reverting.notes(plan):
            click.echo(line)
        for line in reverting.stranded_notes(tree, plan):
            click.echo(line, err=True)
        backups = reverting.write_revert(tree, plan, force)
        for backup in backups:
            click.echo(_("saved your version as {file}").format(file=backup))
        for line in reverting.uncommitted_notes(tree, plan):
            click.echo(line)
        files = len(reverting.touched(plan))
        if plan.record is not None:
            said = _("Ultralytics {release} at {root}: took out {names}; wrote {files} file(s)")
        else:
            said = _("Ultralytics {release} at {root}: reverted everything; wrote {files} file(s)")
        click.echo(said.format(release=tree.release_text, root=tree.root, names=", ".join(plan.removed), files=files))
        sha = reverting.commit(tree, plan, backups)
        if sha:
            click.echo(_("committed the reverse change as {sha}").format(sha=sha[:10]))


def _verify(
    tree: Tree, specs: list, python: str, device: str, export: str | None, as_json: bool, jobs: int | None = None,
    whole: bool = True, threads: int | None = None, stock: bool | None = None, ddp: int | None = None,
) -> None:
    from patcher import verify as verifier

    if as_json:
        i18n.machine_readable()  # the reasons in the report, written by the fork's checks, in English
    progress = lambda line: click.echo(line, err=True)  # noqa: E731
    report = verifier.verify_tree(tree, specs, python, device, export, jobs, whole, threads, stock, ddp, progress)
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else verifier.render_table(report))
    if not report.ok:
        sys.exit(EXIT_EDIT_FAILED)


def _list_checks(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from patcher.verify import list_checks

        click.echo(list_checks())
        ctx.exit(0)


@cli.command()
@PATH_ARG
@click.option("--list-checks", is_flag=True, is_eager=True, expose_value=False, callback=_list_checks,
              help="Print the checks, in the order they run, with what each proves; then exit.")
@click.option("--model", "patterns", multiple=True, metavar="GLOB",
              help="Only the installed YAMLs whose name matches (repeatable); a scale letter picks that scale.")
@click.option("--yaml", "yaml_files", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Also verify this model YAML of yours, in the tree or anywhere (repeatable).")
@click.option("--against", metavar="NAME", help="The stock model --yaml files are compared with, e.g. yolo11s-seg.yaml [default: guessed from each file].")
@click.option("--device", default="cpu", show_default=True, help="cpu, or a CUDA device index such as 0.")
@PYTHON_OPT
@click.option("--export", type=click.Choice(["onnx"]), help="Also export through the fork's exporter and compare.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64),
              help="Parallel processes, and the cores they use at most [default: one per CPU core, up to 4; 1 on a GPU].")
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per process [default: the cores --jobs allows, shared].")
@click.option("--stock/--no-stock", default=None,
              help="Also build every stock model of the release, patched and unpatched, and compare [default: without --model].")
@click.option("--ddp", "ddp", type=click.IntRange(2, 64), metavar="N",
              help="Also train each model for two steps in N ranks under torch.distributed (gloo on the CPU, nccl on GPUs).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
def verify(
    path: Path, patterns: tuple[str, ...], yaml_files: tuple[Path, ...], against: str | None, device: str, python: str,
    export: str | None, jobs: int | None, threads: int | None, stock: bool | None, ddp: int | None, as_json: bool,
) -> None:
    """Build, run, train, reload and fuse every installed model (and your own YAMLs) in the fork's own interpreter;
    exit 1 on a failure."""
    from patcher import verify as verifier
    from patcher.verify.own import own_specs

    if device != "cpu" and not device.isdigit():
        raise click.BadParameter(_("{device}: give cpu or a CUDA device index such as 0.").format(device=repr(device)), param_hint="--device")
    if against and not yaml_files:
        raise click.UsageError(_("--against names the stock model your --yaml files are compared with: give --yaml FILE too."))
    tree = find_tree(path)
    tree.refuse_if_compromised()
    own, notes = own_specs(tree, yaml_files, against)
    specs = verifier.select_models(tree, patterns) if patterns or not yaml_files else []
    for note in notes:
        click.echo(note, err=True)
    whole = not patterns and not yaml_files
    _verify(tree, specs + own, python, device, export, as_json, jobs, whole, threads, stock, ddp)


@cli.command()
@PATH_ARG
@click.option("--model", "patterns", multiple=True, metavar="GLOB",
              help="Only the installed YAMLs whose name matches (repeatable); a scale letter picks that scale.")
@PYTHON_OPT
@click.option("--device", default="cpu", show_default=True, help="cpu, or a CUDA device index such as 0.")
@click.option("--half", is_flag=True, help="On a GPU, time inference in fp16.")
@click.option("--batch", "batch_text", default=None, show_default="1,4 on the CPU, 1,32 on a GPU",
              help="Batch sizes: latency at the smallest, throughput and a training step at the largest.")
@click.option("--imgsz", type=click.IntRange(32, 4096), default=640, show_default=True, help="Square image size.")
@click.option("--onnx", is_flag=True, help="Also time the fork's ONNX export in onnxruntime.")
@click.option("--rounds", type=click.IntRange(3, 1000), default=None, show_default="16 on the CPU, 10 on a GPU",
              help="Interleaved timing rounds (half as many for the large batch and the training step).")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON.")
@click.option("--plot", type=click.Path(path_type=Path), help="Draw latency against parameters into this PNG.")
def bench(
    path: Path, patterns: tuple[str, ...], python: str, device: str, half: bool, batch_text: str, imgsz: int,
    onnx: bool, rounds: int | None, as_json: bool, plot: Path | None,
) -> None:
    """Time each installed model against its family's stock model in the fork's own interpreter, on this device."""
    from patcher import bench as benching
    from patcher import verify as verifier

    if device != "cpu" and not device.isdigit():
        raise click.BadParameter(_("{device}: give cpu or a CUDA device index such as 0.").format(device=repr(device)), param_hint="--device")
    if half and device == "cpu":
        raise click.UsageError(_("--half times fp16 on a GPU; give --device 0 (on the CPU, fp32 is what runs)."))
    if as_json:
        i18n.machine_readable()
    auto_rounds = rounds is None
    batches, rounds = benching.defaults(device, benching.parse_batches(batch_text), rounds)
    benching.check_plot_path(plot)
    tree = find_tree(path)
    tree.refuse_if_compromised()
    python = verifier.check_python(python)
    specs = verifier.select_models(tree, patterns)
    progress = lambda line: click.echo(line, err=True)  # noqa: E731
    report = benching.run(tree, specs, python, device, half, batches, imgsz, onnx, rounds, plot, progress, auto_rounds)
    click.echo(json.dumps(report, indent=2) if as_json else benching.format_table(report))


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--baseline", type=click.Path(path_type=Path), help="The run the others are compared with (default: the first).")
@click.option("--device", default="cpu", show_default=True, help="Where to time the models: cpu, or a CUDA device index such as 0.")
@click.option("--format", "form", type=click.Choice(["md", "latex", "csv"]), default="md", show_default=True, help="The table's format.")
@click.option("--plot", type=click.Path(path_type=Path), help="Draw mAP50-95 against latency into this PNG.")
@click.option("--rounds", type=click.IntRange(3, 1000), default=20, show_default=True, help="Interleaved timing rounds.")
@click.option("--tree", "tree_path", type=click.Path(path_type=Path),
              help="The fork the runs were trained with (default: the Ultralytics the interpreter imports).")
@PYTHON_OPT
def table(
    runs: tuple[Path, ...], baseline: Path | None, device: str, form: str, plot: Path | None, rounds: int,
    tree_path: Path | None, python: str,
) -> None:
    """Make the table of RUNS (Ultralytics training folders) that a paper shows: parameters, GFLOPs, the best epoch's
    scores, FPS measured now on one device, the training time, and each figure against the baseline."""
    from patcher import table as tables
    from patcher import verify as verifier
    from patcher.bench import check_plot_path

    if device != "cpu" and not device.isdigit():
        raise click.BadParameter(_("{device}: give cpu or a CUDA device index such as 0.").format(device=repr(device)), param_hint="--device")
    check_plot_path(plot)
    tree = find_tree(tree_path).root if tree_path else None
    python = verifier.check_python(python)
    read = tables.read_runs(runs, baseline)
    environment = tables.measure(read, python, tree, device, rounds, plot)
    click.echo(tables.FORMATS[form](read, environment), nl=False)
    if plot:
        click.echo(_("plot: {file}").format(file=plot), err=True)


@cli.command("export-checkpoint")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tree", "tree_path", required=True, type=click.Path(path_type=Path),
              help="The patched tree the checkpoint was trained with.")
@PYTHON_OPT
def export_checkpoint(checkpoint: Path, out: Path, tree_path: Path, python: str) -> None:
    """Write CHECKPOINT (a trained best.pt) as a portable checkpoint OUT: YAML, weights and names, no classes."""
    from patcher.carry import carry

    report = carry("export", tree_path, checkpoint, out, python)
    renumbered = f"; {report['renumbered']} tensors renumbered from the tutorials' layout" if report["renumbered"] else ""
    click.echo(f"wrote {out}: {report['tensors']} tensors of {report['layers']} layers{renumbered}. It loads with "
               f"torch.load(..., weights_only=True) anywhere; `ultrapatch import-checkpoint {out} best.pt --tree TREE` "
               f"makes it a checkpoint of a tree where the backbone is applied.")


@cli.command("import-checkpoint")
@click.argument("portable", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--tree", "tree_path", required=True, type=click.Path(path_type=Path),
              help="The patched tree to rebuild the model in (its backbone applied).")
@PYTHON_OPT
def import_checkpoint(portable: Path, out: Path, tree_path: Path, python: str) -> None:
    """Rebuild the model of PORTABLE in the tree, load its weights strictly, and write a checkpoint OUT for YOLO()."""
    from patcher.carry import carry

    report = carry("import", tree_path, portable, out, python)
    click.echo(f"wrote {out}: {report['tensors']} tensors of {report['layers']} layers; YOLO({str(out)!r}) loads it in this tree.")


@cli.command()
@PATH_ARG
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
@click.option("--yamls", is_flag=True, help="List the installed model YAMLs by the names YOLO() and --model take.")
def status(path: Path, as_json: bool, yamls: bool) -> None:
    """Show the release at PATH, and the state of every edit and backbone."""
    from patcher.status import format_status, format_yamls, installed_yamls, tree_status

    tree = find_tree(path)
    if yamls:
        found = installed_yamls(tree)
        if as_json or found:
            click.echo(json.dumps(found, indent=2) if as_json else format_yamls(found))
        else:
            click.echo(_("no model YAML of ultrapatch's is installed in {root}").format(root=tree.root), err=True)
        return
    if as_json:
        i18n.machine_readable()  # the values programs read (a backbone's detail, a file's state) stay English
        click.echo(json.dumps(tree_status(tree), indent=2))
        return
    click.echo(format_status(tree_status(tree)))


def main() -> None:
    """Entry point (the console script and `python -m patcher`): run the command, then end the process with its exit
    status, skipping the interpreter's teardown. Freeing the libcst trees an apply holds at exit took 0.07-0.19 s,
    up to half again of the floor's whole run; the exit handlers still run and the streams are flushed first."""
    tolerant_streams()
    try:
        _main()
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a closed stream: nothing left to say
            pass
    os._exit(status)


def tolerant_streams() -> None:
    """A character the console's code page cannot show (an emoji of Ultralytics' messages, a file name, on a GBK
    console of Chinese Windows) is written as '?', never an UnicodeEncodeError in the middle of a command."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and getattr(stream, "errors", "strict") == "strict":
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="replace")


def _main() -> None:
    """A sentence for user errors, a quiet exit 0 when the reader of stdout goes away (`| head`, as git does), and a
    short message with a log file for anything else."""
    try:
        try:
            cli.main(standalone_mode=False)
            sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        except SystemExit as exc:  # click's own exit on a closed pipe (it pacifies stdout first): not an error
            if exc.code == 1 and isinstance(sys.stdout, click.utils.PacifyFlushWrapper):
                raise BrokenPipeError from None
            raise
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo(_("Aborted!"), err=True)
        sys.exit(1)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        sys.exit(0)
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - the last line of defence: no traceback on the terminal
        fd, name = tempfile.mkstemp(prefix="ultrapatch-error-", suffix=".log")
        os.close(fd)
        log = Path(name)
        log.write_text(traceback.format_exc(), encoding="utf-8")
        click.echo(_("ultrapatch: internal error: {error}. Please report it with {log}.").format(error=repr(sys.exc_info()[1]), log=log), err=True)
        sys.exit(EXIT_INTERNAL)
