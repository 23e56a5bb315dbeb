"""Small helpers every part of the fork side uses: outputs as shapes and tensors, their relative difference, paths
inside the tree, and measuring on torch's meta device."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path


def on_meta(torch, build: bool):
    """A context for measuring a model without arithmetic, on torch's `meta` device (shapes, no data).

    With `build`, the tensors the fork's constructors create without a device (parameters, buffers, the stride probe's
    image) are made on the meta device; `torch.tensor` stays on the CPU, since the fork turns such tensors into
    numbers (the strides it learns, the head's bias priors). Batch norm of a meta tensor returns its shape at once:
    torch's generic meta version of it is slow."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    factories = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.arange, torch.linspace}
    batch_norms = {F.batch_norm, torch.batch_norm}

    class OnMeta(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            first = args[0] if args else kwargs.get("input")
            if func in batch_norms and getattr(first, "is_meta", False):
                return torch.empty_like(first)
            if build and func in factories and kwargs.get("device") is None:
                kwargs["device"] = "meta"
            return func(*args, **kwargs)

    return OnMeta()


def inside(path: str | os.PathLike | None, root: Path) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(root)


def release_of(init_file: str) -> str:
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", Path(init_file).read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else "unknown"


def shapes(out):
    """The nested shapes of a model's output: tensors by their shape, containers by their items."""
    if hasattr(out, "shape"):
        return list(out.shape)
    if isinstance(out, (list, tuple)):
        return [shapes(o) for o in out]
    if isinstance(out, dict):
        return {k: shapes(v) for k, v in out.items()}
    return type(out).__name__


def tensors(out) -> list:
    if hasattr(out, "shape"):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in tensors(o)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in tensors(v)]
    return []


def relative_error(a, b) -> float:
    """The largest difference between two outputs' tensors, relative to the largest value of the first."""
    pairs = list(zip(tensors(a), tensors(b)))
    if not pairs or len(tensors(a)) != len(tensors(b)):
        return math.inf
    return max(float((x.float() - y.float()).abs().max() / x.float().abs().max().clamp(min=1e-12)) for x, y in pairs)


def fmt(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"
