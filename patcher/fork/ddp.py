"""verify's `ddp` check, one process per rank, started by `python -m torch.distributed.run` in the fork's interpreter.

    python -m torch.distributed.run --nproc_per_node N launch.py ddp SPEC.json

SPEC names the tree, the device, the model (YAML name, builder, task), the image size and the folder the ranks
report to. Each rank imports the fork (first on sys.path, and checked to be it), builds the model with the same seed,
wraps it in DistributedDataParallel as strictly as any release's trainer does (no `find_unused_parameters`, which
8.1's trainer and a compiled model use; buffers broadcast from rank 0 before each forward), and runs two training
steps on a batch of its own. A parameter that gets no gradient on some rank fails the check, with its name (DDP would
otherwise stop the next step); so do parameters or buffers that differ across ranks afterwards, once a last
forward in eval mode has synchronised the buffers as DDP does. Each rank writes `rank-K.json` to the report folder:
its status, its reason, and the reason's cause: `finding` (a fact of the model) or `error` (an exception of the rank,
which the parent runs once more).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .i18n import _


def fingerprints(module, torch) -> dict[str, list[float]]:
    """Per parameter and buffer: its sum and its sum of squares, in float64."""
    result = {}
    for kind, items in (("param", module.named_parameters()), ("buffer", module.named_buffers())):
        for name, tensor in items:
            t = tensor.detach().double()
            result[f"{kind} {name}"] = [float(t.sum()), float((t * t).sum())]
    return result


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    out = Path(spec["report"]) / f"rank-{rank}.json"

    def report(**fields) -> int:
        out.write_text(json.dumps({"rank": rank, **fields}), encoding="utf-8")
        return 0

    tree = Path(spec["tree"]).resolve()
    sys.path.insert(0, str(tree))
    import torch
    import torch.distributed as dist

    import ultralytics

    if tree not in Path(ultralytics.__file__).resolve().parents:
        return report(status="fail", cause="error", reason=_("rank {rank} imported ultralytics from {file}, not the fork").format(rank=rank, file=ultralytics.__file__))
    from .data import synthetic_batch

    from ultralytics.cfg import get_cfg

    cuda = spec["device"] != "cpu"
    device = torch.device(f"cuda:{rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        torch.manual_seed(0)  # every rank builds the same model, as every rank of the trainer does
        model = getattr(ultralytics, spec["builder"])(spec["name"]).model.to(device).train()
        model.args = get_cfg()
        model.nc = model.yaml.get("nc", 80)
        for name, p in model.named_parameters():  # what the trainer trains: everything but the DFL's fixed weights
            p.requires_grad_(".dfl" not in name)
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[rank] if cuda else None, find_unused_parameters=False, broadcast_buffers=True
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
        size = (spec["imgsz"], spec["imgsz"])
        for step in range(2):
            torch.manual_seed(1000 * rank + step)  # a batch of this rank's own
            batch = synthetic_batch(torch, spec["task"], size, images=2)
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
            optimizer.zero_grad(set_to_none=True)
            loss = ddp(batch)[0]
            loss.sum().backward()
            unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
            everyone = [None] * world  # every rank learns what every rank found before any of them stops: a rank
            dist.all_gather_object(everyone, unused)  # that left early would break the others' collectives
            found = next(((k, names) for k, names in enumerate(everyone) if names), None)
            if found:
                k, names = found
                return report(
                    status="fail",
                    cause="finding",
                    reason=(
                        f"{len(names)} parameter(s) get no gradient on rank {k} (e.g. {', '.join(names[:3])}): "
                        f"DistributedDataParallel without find_unused_parameters stops at the next step"
                    ),
                )
            optimizer.step()
        ddp.eval()
        with torch.no_grad():  # DDP broadcasts rank 0's buffers before a forward: after it, every rank must agree
            ddp(torch.rand(1, 3, *size, device=device))
        mine = fingerprints(model, torch)
        gathered = [None] * world
        dist.all_gather_object(gathered, mine)
        differing = sorted(
            {
                key
                for other in gathered
                for key, (total, squares) in mine.items()
                if key not in other
                or abs(other[key][0] - total) > 1e-6 * (1 + abs(total))
                or abs(other[key][1] - squares) > 1e-6 * (1 + abs(squares))
            }
        )
        if differing:
            kinds = {k.split()[0] for k in differing}
            what = " and ".join(sorted(f"{kind}s" for kind in kinds))
            return report(
                status="fail",
                cause="finding",
                reason=_("{count} {what} differ across ranks after two steps (e.g. {names})").format(
                    count=len(differing), what=what, names=", ".join(differing[:3])
                ),
            )
        return report(status="pass", cause="none", reason=_("{world} ranks, 2 steps, parameters and buffers identical across ranks").format(world=world))
    except Exception as exc:  # noqa: BLE001 - the reason is the report
        return report(status="fail", cause="error", reason=_("rank {rank}: {error}").format(rank=rank, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()

