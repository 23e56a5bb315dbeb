"""Record the facts `unit/test_modules.py` checks ultrapatch's backbones against, from the tutorials' own code.

    python tests/facts/make_module_facts.py [SEED_CODE_DIR]

SEED_CODE_DIR defaults to ../shared/reference/seed-code beside the repository (the seeds' code, re-indented; it is
not part of this repository). MobileNetV2_tv's reference is torchvision's mobilenet_v2 (seed 004 uses it), its
features up to layer 17 tapped after layers 3, 6, 13 and 17. Writes tests/facts/modules.json.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from module_facts import facts  # noqa: E402

SEEDS = {  # ultrapatch's module: (the seed's file, the variants it defines)
    "MobileNetV3": ("seed000_MobileNetV3.py", ["MobileNetV3_large_n", "MobileNetV3_large_s", "MobileNetV3_large_m",
                                                "MobileNetV3_small_n", "MobileNetV3_small_s", "MobileNetV3_small_m"]),
    "MobileNetV2": ("seed002_MobileNetV2.py", ["MobileNetV2"]),
    "MobileOne": ("seed003_MobileOne.py", ["MobileOne_s0", "MobileOne_s1", "MobileOne_s2", "MobileOne_s3", "MobileOne_s4"]),
}


class TorchvisionTaps(torch.nn.Module):
    """torchvision's mobilenet_v2 features, returning the maps after layers 3, 6, 13 and 17."""

    def __init__(self):
        import torchvision

        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features[:18]

    def forward(self, x):
        maps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (3, 6, 13, 17):
                maps.append(x)
        return maps


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    seeds = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "reference" / "seed-code"
    torch.set_num_threads(1)
    recorded = {
        "how": "Recorded by tests/facts/make_module_facts.py from the seeds' code (shared/reference/seed-code: seed "
               "000 MobileNetV3, 002 MobileNetV2, 003 MobileOne) and from torchvision's mobilenet_v2 for "
               "MobileNetV2_tv. Every tensor is filled from its key name (tests/module_facts.py); the input is "
               "torch.rand(1, 3, 640, 480) from seed 0; sums are of each returned map in eval mode.",
        "torch": torch.__version__,
        "modules": {},
    }
    for module, (file, variants) in SEEDS.items():
        seed = load(seeds / file)
        forward = getattr(seed, "features", None)  # MobileOne's seed ends in a classifier: its maps come from here
        for name in variants:
            recorded["modules"][f"{module}.{name}"] = facts(getattr(seed, name)(), forward)
            print(module, name, file=sys.stderr)
    recorded["modules"]["MobileNetV2_tv.MobileNetV2_tv"] = facts(TorchvisionTaps())
    (HERE / "modules.json").write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
