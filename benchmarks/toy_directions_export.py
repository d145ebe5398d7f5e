"""Fit the toy bundle's editing directions (both ways) and ship them in e3dge/toy/assets/directions.

    PYTHONPATH=. python benchmarks/toy_directions_export.py [--inverted 1500]

Writes the directions (safetensors + JSON, with each fit's held-out accuracy) and adds
``"directions": "directions"`` to the toy bundle's pipeline.json.
"""

from __future__ import annotations

import argparse
import json

import torch

from e3dge.editing import save_directions
from e3dge.editing.toy import fit_toy_directions
from e3dge.toy import TOY_WEIGHTS_DIR, load_toy_encoder, load_toy_generator

ASSETS = TOY_WEIGHTS_DIR.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sampled", type=int, default=4000)
    p.add_argument("--inverted", type=int, default=1500)
    p.add_argument("--seed", type=int, default=8080)
    a = p.parse_args()
    torch.set_num_threads(2)
    results = fit_toy_directions(
        load_toy_generator(), load_toy_encoder(), num=a.sampled, num_inverted=a.inverted, seed=a.seed
    )
    for name, r in results.items():
        print(
            f"{name:24s} train {r.train_accuracy:.3f}  held-out {r.val_accuracy:.3f}  range +-{r.direction.strength_range[1]:.2f}"
        )
    save_directions(ASSETS / "directions", {k: r.direction for k, r in results.items()})
    spec_path = ASSETS / "pipeline.json"
    spec = json.loads(spec_path.read_text())
    spec["directions"] = "directions"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    print(f"wrote {ASSETS / 'directions'} and {spec_path}")


if __name__ == "__main__":
    main()
