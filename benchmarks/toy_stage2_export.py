"""Put a Stage II run's local branch into a bundle: the toy bundle in the package, or a new folder.

    PYTHONPATH=. python benchmarks/toy_stage2_export.py outputs/stage2-toy [--out DIR]

Without ``--out`` the modules go to ``e3dge/toy/assets/toy-stage2/{local_encoder,aligner_2d,fusion}``
(float16 parameters) and the toy bundle's pipeline.json names them; with ``--out`` a full bundle
(toy generator + E0 + directions + the branch) is written there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from e3dge.encoders import FeatureFusion, LocalEncoder, ResidualAligner
from e3dge.inversion import InversionPipeline
from e3dge.toy import TOY_WEIGHTS_DIR

ASSETS = TOY_WEIGHTS_DIR.parent
SLOTS = {"local_encoder": LocalEncoder, "aligner_2d": ResidualAligner, "fusion": FeatureFusion}


def load_branch(run: Path) -> dict[str, torch.nn.Module]:
    """The run's ``final/`` modules that exist (E1 always; E_ADA and fusion for 2d / hybrid runs)."""
    info = json.loads((run / "final" / "branch.json").read_text()) if (run / "final" / "branch.json").is_file() else {}
    if info.get("film_target", "colour") != "colour":
        raise SystemExit(
            f"{run}: trained with film_target={info['film_target']!r}; bundles apply the FiLM to the colour features only"
        )
    return {
        slot: cls.from_pretrained(run / "final" / slot)
        for slot, cls in SLOTS.items()
        if (run / "final" / slot).is_dir()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished e3dge train stage2 folder")
    p.add_argument("--out", type=Path, default=None, help="write a full bundle here instead of updating the toy bundle")
    a = p.parse_args()
    modules = load_branch(a.run)
    if a.out is not None:
        toy = InversionPipeline.from_pretrained("toy")
        InversionPipeline(
            toy.generator,
            toy.encoder,
            directions=toy.directions,
            description=toy.description + " + Stage II local branch",
            **modules,
        ).save_pretrained(a.out)
        print(f"wrote {a.out}")
        return
    spec_path = ASSETS / "pipeline.json"
    spec = json.loads(spec_path.read_text())
    for slot, module in modules.items():
        module.save_pretrained(ASSETS / "toy-stage2" / slot, dtype=torch.float16)
        spec["components"][slot] = {"class": type(module).__name__, "subfolder": f"toy-stage2/{slot}"}
    spec["description"] = (
        "toy lab: the toy EG3D distilled from procedural heads + its Stage I encoder E0 + a Stage II local branch (offline; it cannot look like a real person)"
    )
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    print(f"wrote {ASSETS / 'toy-stage2'} and {spec_path}")


if __name__ == "__main__":
    main()
