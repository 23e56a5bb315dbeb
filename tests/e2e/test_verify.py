"""`ultrapatch verify` on real patched trees: what passes, and every deliberate break caught with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from click.testing import CliRunner

from conftest import pristine_tree, tree_digest, verify, verify_json, verify_table
from patcher.backbones import select_backbones
from patcher.cli import cli
from patcher.edits import EDITS
from patcher.edits.base import Context
from patcher.planner import make_plan, write_plan
from patcher.tree import find_tree

pytestmark = pytest.mark.e2e
RELEASE = "8.4.190"
SMALL = "yolo11n-MobileNetV3_small_n"


def apply_all_but(tree: Path, skipped: str, backbone: str = "mobilenetv3") -> None:
    """Patch `tree` with every edit except `skipped`: a user's tree with one tutorial step forgotten."""
    found = find_tree(tree)
    plan = make_plan(found, [e for e in EDITS if e.name != skipped], Context(found.release, select_backbones((backbone,))))
    assert plan.ok
    write_plan(plan)


def statuses(model: dict) -> dict[str, str]:
    return {name: check["status"] for name, check in model["checks"].items()}


def test_report_format_and_every_check(release_tree):
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3", "-b", "mobileone"]).exit_code == 0
    patched, settings = tree_digest(tree), tree.parent / "yolo-config"  # the user's YOLO_CONFIG_DIR (conftest.verify)
    report = verify_json(tree, "--model", SMALL, "--model", "yolov8n-seg-MobileOne_s0", "--model", "yolo11s-pose-MobileNetV3_large_n")
    assert tree_digest(tree) == patched  # no runs/ from validation, no __pycache__: verify writes to its scratch folder
    assert not settings.exists() or not any(settings.iterdir())  # nor the user's Ultralytics settings
    assert {"release", "python", "torch", "device", "models"} <= set(report)
    assert report["release"] == RELEASE and report["device"] == "cpu"
    assert [m["name"] for m in report["models"]] == [
        "yolo11n-MobileNetV3_small_n.yaml",
        "yolo11s-pose-MobileNetV3_large_n.yaml",  # a scale letter in --model picks that scale
        "yolov8n-seg-MobileOne_s0.yaml",
    ]
    for model in report["models"]:
        assert {"name", "family", "task", "ok", "layers", "params", "gflops", "stock", "checks"} <= set(model)
        assert model["ok"], model
        assert model["gflops"] > 0 and model["stock"]["gflops"] > 0
        passing = ("yaml", "build", "forward", "strides", "scales", "flops", "train", "batch1", "embed", "freeze",
                   "checkpoint", "reload", "fuse", "val")  # fmt: skip
        distill = "pass" if model["task"] == "detect" else "skip"  # 8.4.x detection models
        skipped = {"export": "skip", "weights": "skip", "amp": "skip", "distill": distill}  # amp: on CUDA only
        assert statuses(model) == {c: "pass" for c in passing} | skipped
        assert "ULTRALYTICS_SAFE_LOAD=1" in model["checks"]["checkpoint"]["reason"]  # 8.4.100+: the safe loader too
    small, pose, seg = report["models"]
    assert (seg["family"], seg["task"], seg["stock"]["name"]) == ("yolov8", "segment", "yolov8n-seg.yaml")
    assert (pose["family"], pose["task"], pose["stock"]["name"]) == ("yolo11", "pose", "yolo11s-pose.yaml")
    assert small["params"] < small["stock"]["params"]  # what the backbone saved, beside the stock model
    assert seg["fused_params"] < seg["params"]  # model.fuse() reparameterised MobileOne


MEASURE_STOCK = """
import json, os, sys
from pathlib import Path
report = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the fork logs to stdout
sys.path.insert(0, sys.argv[1])
from patcher.fork.session import Session
session = Session(Path(sys.argv[1]), "cpu", None, Path("."))
for stock, builder, task, nc in json.loads(sys.argv[2]):
    spec = {"stock": stock, "builder": builder, "task": task, "nc": nc}
    meta = session.measure_stock(spec, meta=True)  # first: a real build after it must not meet a meta tensor
    print(json.dumps([stock, meta, session.measure_stock(spec, meta=False)]), file=report)
"""


@pytest.mark.parametrize("version", ["8.1.47", RELEASE])
def test_the_stock_yardstick_measured_on_the_meta_device_is_the_real_one(version):
    """verify measures the stock models without arithmetic (torch's meta device): their layers, parameters, GFLOPs,
    stride and output shapes must be what a real build and forward give, and the real build after it must work."""
    stocks = [("yolov8n.yaml", "YOLO", "detect", 80), ("yolov8n-pose.yaml", "YOLO", "pose", 80),
              ("yolov8n-cls.yaml", "YOLO", "classify", 1000), ("rtdetr-l.yaml", "RTDETR", "detect", 80)]  # fmt: skip
    if version == RELEASE:
        stocks += [("yolo11n-seg.yaml", "YOLO", "segment", 80), ("yolo26n.yaml", "YOLO", "detect", 80)]
    tree = pristine_tree(version)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_STOCK, str(tree), json.dumps(stocks)],
        capture_output=True, text=True, cwd=tree.parent, env={**os.environ, "YOLO_OFFLINE": "1"}, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row[0] for row in rows] == [s[0] for s in stocks]
    for stock, meta, real in rows:
        assert meta == real, stock
        assert real["gflops"] > 0 and real["observed"]["shapes"]["eval 640x480"], stock


def test_export_to_onnx_matches_the_pytorch_model(release_tree):
    pytest.importorskip("onnxruntime")  # the `export` extra, which `.[test]` installs
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    (model,) = verify_json(tree, "--model", SMALL, "--export", "onnx")["models"]
    assert model["checks"]["export"] == {**model["checks"]["export"], "status": "pass", "reason": f"{SMALL}.onnx"}


def test_new_models_need_no_forward_loop_edit(release_tree):
    """The maps have layers of their own, so the release's forward loops run a patched model as they are: a tree
    without the forward-loop edits (which are there for checkpoints of the old layout) verifies."""
    tree = release_tree(RELEASE)
    found = find_tree(tree)
    loops = {"predict-once", "rtdetr-predict", "world-predict", "yoloe-predict"}
    plan = make_plan(found, [e for e in EDITS if e.name not in loops], Context(found.release, select_backbones(("mobilenetv3",))))
    assert plan.ok
    write_plan(plan)
    (model,) = verify_json(tree, "--model", SMALL)["models"]
    assert model["ok"], model


def test_a_missing_index_edit_is_caught(release_tree):
    tree = release_tree(RELEASE)
    apply_all_but(tree, "parse-model-index")
    report = verify_json(tree, "--model", SMALL, code=1)
    (model,) = report["models"]
    assert statuses(model)["build"] == "fail"
    reason = model["checks"]["build"]["reason"]
    assert reason.startswith("parse_model calls the backbone its branch already built") and "parse-model-index edit" in reason
    assert {statuses(model)[c] for c in ("forward", "strides", "train", "checkpoint", "fuse", "val")} == {"skip"}


LEGACY_CHECKS = """
import json, os, sys
from pathlib import Path
report = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the fork logs to stdout
sys.path[:0] = [sys.argv[1], sys.argv[3]]
from patcher.fork.checks import by_name
from patcher.fork.checks.base import Finding, ModelContext
from patcher.fork.session import Session
from legacy_probe import to_tutorial_layout
session = Session(Path(sys.argv[1]), "cpu", None, Path("."))
spec = {"name": sys.argv[2], "stock": "yolo11n.yaml", "builder": "YOLO", "task": "detect", "nc": 80}
verdicts = {}
for layout in ("new", "old"):
    model = session.build(spec["name"], "YOLO")[1]
    if layout == "old":  # one backbone layer numbered 4, its maps spread by the forward loop
        to_tutorial_layout(model)
    for check in ("embed", "distill"):
        try:
            by_name(check).run(ModelContext(spec, model=model), session)
            verdicts[layout + " " + check] = "pass"
        except Finding as exc:
            verdicts[layout + " " + check] = str(exc)
print(json.dumps(verdicts), file=report)
"""


def test_the_index_checks_catch_the_tutorials_layout(release_tree):
    """A model in the tutorials' layout (a layer's index is not its place): the embed and distill checks fail with
    the reason; the same model in ultrapatch's layout passes them."""
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    tests = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", LEGACY_CHECKS, str(tree), f"{SMALL}.yaml", str(tests)],
        capture_output=True, text=True, cwd=tree.parent, env={**os.environ, "YOLO_OFFLINE": "1"}, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    verdicts = json.loads(done.stdout)
    assert verdicts["new embed"] == verdicts["new distill"] == "pass", verdicts
    assert "layer indices and places in the model differ" in verdicts["old embed"], verdicts
    assert verdicts["old distill"].startswith("as the student: IndexError"), verdicts


def test_the_stock_models_check(release_tree):
    """`--stock` builds every stock YAML of the release in the patched fork and in the release rebuilt from the
    record's originals: the same; then with the tutorials' `s = 640` for every model put back by hand, it fails."""
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    stock = verify_json(tree, "--model", SMALL, "--stock")["stock_models"]
    assert stock["status"] == "pass" and stock["models"] > 40 and not stock["differ"], stock
    tasks = tree / "ultralytics/nn/tasks.py"
    probe = 's = 640 if any(hasattr(layer, "width_list") for layer in self.model) else 256'
    tasks.write_text(tasks.read_text(encoding="utf-8").replace(probe, "s = 640"), encoding="utf-8")
    result = verify(tree, "--model", SMALL, "--stock")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "stock models: FAIL:" in result.stdout and "(probes)" in result.stdout, result.stdout[-2000:]
    assert verify_json(tree, "--model", SMALL, "--no-stock")["stock_models"] is None


def test_a_backbone_returning_three_maps_is_caught(release_tree):
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    module = tree / "ultralytics/nn/AddModules/MobileNetV3.py"
    module.write_text(
        module.read_text()
        + "\n\n_init = MobileNetV3.__init__\n\n\ndef _three_maps(self, *args, **kwargs):\n"
        + "    _init(self, *args, **kwargs)\n    self.taps, self.width_list = self.taps[:3], self.width_list[:3]\n\n\n"
        + "MobileNetV3.__init__ = _three_maps\n"
    )
    report = verify_json(tree, "--model", SMALL, code=1)
    (model,) = report["models"]
    assert statuses(model)["build"] == "pass"  # it builds: only running it shows what is wrong
    assert statuses(model)["strides"] == "fail"
    assert "the head receives maps at strides [4, 8, 16], not [8, 16, 32]" in model["checks"]["strides"]["reason"]
    assert statuses(model)["forward"] == "fail"  # more anchors than the stock yolo11n has
    assert statuses(model)["train"] == "fail"  # the unused last stage gets no gradient: DDP would stop
    assert "receive no gradient" in model["checks"]["train"]["reason"]


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_shadowing_installation_stops_verify(release_tree, relative):
    """Another ultralytics on PYTHONPATH, also when the entry is relative to the folder verify is started in (the
    checks run in a scratch folder, where it would point nowhere)."""
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    other = pristine_tree("8.3.40")
    before = tree_digest(tree)
    entry = str(other)
    if relative:  # verify() runs in tree.parent
        (tree.parent / "other-release").symlink_to(other, target_is_directory=True)
        entry = "other-release"
    result = verify(tree, env={"PYTHONPATH": entry})
    assert result.returncode == 2
    assert f"{tree.parent / 'other-release' if relative else other}/ultralytics/__init__.py" in result.stderr
    assert f"pip install -e {tree}" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree_digest(tree) == before


def test_apply_then_verify_skips_the_checkpoint_where_no_checkpoint_loads(release_tree):
    """8.1.47 loads checkpoints with torch.load's default, which torch >= 2.6 makes weights_only=True: no .pt file
    loads, stock or patched. The checkpoint check is skipped with that reason (the stock model shows it), and the
    run passes."""
    tree = release_tree("8.1.47")
    result = CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2", "--verify"])
    assert result.exit_code == 0, result.output
    assert "wrote 16 file(s)" in result.output  # the apply, then the verify
    assert "backbone variants" not in result.output  # one variant: no note on narrowing the selection
    rows = verify_table(result.output)
    assert set(rows) >= {"yolov3-MobileNetV2.yaml", "yolov8n-seg-MobileNetV2.yaml", "rtdetr-l-MobileNetV2.yaml"}
    skipped = ("weights", "amp", "distill", "checkpoint", "reload", "export")  # checkpoint: no .pt loads; reload: none to load
    for name, cells in rows.items():
        skips = skipped + (("scales",) if name.startswith(("yolov3", "rtdetr")) else ())  # one scale only
        assert {c: v for c, v in cells.items() if c != "val"} == {c: "skip" if c in skips else "ok" for c in cells if c != "val"}, name
    assert "checkpoint (7 models): torch" in result.output
    assert "weights_only=True, and this release's loader does not ask for full checkpoints" in result.output
    # 8.1.47's AP calls np.trapz, which numpy 2.4 removed: validation fails for the stock models too (not classify)
    val = {name: cells["val"] for name, cells in rows.items()}
    if hasattr(numpy, "trapz"):
        assert set(val.values()) == {"ok"}, val
    else:
        assert {name: v for name, v in val.items() if "-cls-" not in name} == {n: "env" for n in val if "-cls-" not in n}
        assert val["yolov8n-cls-MobileNetV2.yaml"] == "ok"
        assert (
            f"  val (6 models): numpy {numpy.__version__} has no np.trapz, which this release calls (numpy < 2.4 has it)"
        ) in result.output
    assert "7 of 7 model(s) pass" in result.output


def test_a_check_the_stock_model_fails_too_is_environment(release_tree, tmp_path):
    """An interpreter without thop (ultralytics-thop): the fork's get_flops says 0 GFLOPs for every model, stock or
    patched. The build check says "environment", names the cause, the other checks still run, and verify passes."""
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    site = tmp_path / "without-thop"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\n\nsys.modules['thop'] = None  # `import thop` fails\n")
    result = verify(tree, "--model", SMALL, env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr[-3000:]
    cells = verify_table(result.stdout)[f"{SMALL}.yaml"]
    skipped = ("weights", "flops", "amp", "export")  # flops: the build counted none
    assert cells == {c: "env" if c == "build" else "skip" if c in skipped else "ok" for c in cells}, cells
    assert "environment (the stock model fails the same check, so the patch is not the cause):" in result.stdout
    assert (
        "  build (1 model): the stock model's GFLOPs are 0 too: the fork's get_flops profiles no model here, because "
        f"{sys.executable} cannot import thop (pip install ultralytics-thop)"
    ) in result.stdout


def test_bad_input_is_a_sentence_and_exit_2(release_tree):
    tree = release_tree(RELEASE)
    before = tree_digest(tree)
    cases = [((), "no ultrapatch backbone or YAML of yours is installed")]
    for args, words in cases:
        result = verify(tree, *args)
        assert (result.returncode, "Traceback" in result.stderr) == (2, False), result.stderr
        assert words in result.stderr
    assert tree_digest(tree) == before
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    before = tree_digest(tree)
    cases = [
        (("--model", "yolo99*"), "no installed model YAML matches 'yolo99*'"),
        (("--python", str(tree / "no-python")), "no such interpreter"),
        (("--device", "gpu"), "give cpu or a CUDA device index"),
        (("--jobs", "0"), "--jobs"),
    ]
    bare = tree.parent / "bare-venv"  # an interpreter without torch
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    cases.append((("--python", str(bare / "bin" / "python")), "cannot import torch"))
    import torch

    if not torch.cuda.is_available():
        cases.append((("--device", "0", "--model", SMALL), "CUDA device 0 is not available"))
    for args, words in cases:
        result = verify(tree, *args)
        assert (result.returncode, "Traceback" in result.stderr) == (2, False), (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
    assert tree_digest(tree) == before


def test_an_interpreter_without_the_forks_requirements_is_told_what_to_install(release_tree, tmp_path):
    """verify run before `pip install -e ./ultralytics`, in an interpreter without cv2: one sentence naming the
    module and the command, exit 2, before any model runs (it used to die as "exit -9 while verifying ...")."""
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2"]).exit_code == 0
    site = tmp_path / "without-cv2"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\n\nsys.modules['cv2'] = None  # `import cv2` fails\n")
    result = verify(tree, "--model", "yolov8n-MobileNetV2", env={"PYTHONPATH": str(site)})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "cannot import the fork" in result.stderr and "'cv2'" in result.stderr
    assert f"-m pip install -e {tree}" in result.stderr
    assert "Traceback" not in result.stderr and "while verifying" not in result.stderr


def test_jobs_1_uses_one_core(release_tree):
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv2"]).exit_code == 0
    report = verify_json(tree, "--model", "yolov8n-cls-MobileNetV2", "--jobs", "1")
    assert report["threads"] == 1 and report["models"][0]["ok"]
    report = verify_json(tree, "--model", "yolov8n-cls-MobileNetV2", "--jobs", "1", "--threads", "2")
    assert report["threads"] == 2


KILL_ONCE = '''

import os as _os
import signal as _signal

_forward = MobileNetV3.forward


def _dies_once_in_validation(self, x):
    if tuple(x.shape[-2:]) in ((160, 192), (192, 160)) and _os.path.exists({marker!r}):  # val's rectangular batches
        _os.remove({marker!r})
        _os.kill(_os.getpid(), _signal.SIGKILL)  # as the kernel's out-of-memory killer ends a process
    return _forward(self, x)


MobileNetV3.forward = _dies_once_in_validation
'''


def test_a_process_killed_in_a_check_costs_only_that_model(release_tree, tmp_path):
    """The kernel kills a verification process in the middle of a model (out of memory): that model fails at the
    check under way, with how the process ended, and a fresh process verifies the rest."""
    tree = release_tree(RELEASE)
    assert CliRunner().invoke(cli, ["apply", str(tree), "-b", "mobilenetv3"]).exit_code == 0
    marker = tmp_path / "kill-once"
    marker.write_text("")
    module = tree / "ultralytics/nn/AddModules/MobileNetV3.py"
    module.write_text(module.read_text() + KILL_ONCE.format(marker=str(marker)))
    models = ("yolo11n-MobileNetV3_small_n", "yolov8n-MobileNetV3_small_n")
    result = verify(tree, *(a for m in models for a in ("--model", m)), "--jobs", "1", "--json")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert not marker.exists()  # it did die once
    dead, alive = sorted(report["models"], key=lambda m: m["ok"])
    assert alive["ok"] and all(s in ("pass", "skip") for s in statuses(alive).values()), alive
    checks = statuses(dead)
    assert list(checks) == list(statuses(alive))  # the same columns, in the same order
    assert checks["val"] == "fail" and checks["export"] == "skip"
    assert all(checks[c] == "pass" for c in ("build", "forward", "strides", "train", "checkpoint", "fuse")), checks
    reason = dead["checks"]["val"]["reason"]
    assert "the verification process was killed by signal 9 (SIGKILL: most likely the kernel's out-of-memory" in reason
    assert "was killed by signal 9" in dead["checks"]["export"]["reason"]


def test_a_check_past_the_memory_limit_fails_with_a_sentence():
    """verify caps each process's data on the CPU: an allocation past the cap is an error the check reports (here
    in a plain process with the fork side's limit and explain), where the kernel would kill the process."""
    probe = (
        "from pathlib import Path; import torch\n"
        "from patcher.fork.explain import explain; from patcher.fork.process import limit_memory\n"
        "limit_memory(3 << 30)\n"
        "try:\n    torch.ones(4 << 30, dtype=torch.uint8)\n"
        "except Exception as exc:\n    print(explain(exc, Path('.'))[0])\n"
        "else:\n    print('allocated')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("it ran out of memory (this verification process may hold 3.0 GiB"), out.stdout
    assert "`--jobs 1` gives one process all of it" in out.stdout


def test_the_memory_limit_shares_the_machine_among_the_processes():
    from patcher.verify import memory_limit

    one, two = memory_limit(1), memory_limit(2)
    if one is None:
        pytest.skip("no /proc/meminfo")
    assert one >= 6 << 30 and two >= 6 << 30
    assert one >= two and (one <= 6 << 30 or abs(one - 2 * two) <= 2 or two == 6 << 30)
