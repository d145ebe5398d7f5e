"""Copy a finished toy distillation run into the package (e3dge/toy/assets/toy-eg3d) and write its card.

    PYTHONPATH=. python benchmarks/toy_export.py RUN_DIR --hardware "2 shared CPU cores, no GPU"

RUN_DIR is the ``--out`` of ``e3dge toy train-generator`` (holds final/, history.json, train_config.json).
Gate numbers are read from benchmarks/results/toy_gates.json when present (run benchmarks/toy_gates.py after).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "e3dge" / "toy" / "assets" / "toy-eg3d"


_NOT_FLAGS = {
    "out_dir",
    "init_from",
    "threads",
    "device",
    "checkpoint_every",
}  # no effect on the result (device: up to float noise)


def train_command(cfg: dict, out: str) -> str:
    """The ``e3dge toy train-generator`` line that reruns a run with this train_config.json."""
    from dataclasses import fields

    from e3dge.toy.distill import DistillConfig

    flags = [
        f"--{f.name.replace('_', '-')} {cfg[f.name]}"
        for f in fields(DistillConfig)
        if f.name not in _NOT_FLAGS
        and f.name in cfg
        and (cfg[f.name] != f.default or f.name in ("steps", "batch_size", "seed"))
    ]
    init = f" --init-from {cfg['init_from']}" if cfg.get("init_from") else ""
    return f"e3dge toy train-generator --out {out}{init} " + " ".join(flags)


def phases(cfg: dict) -> list[dict]:
    """The recipes from scratch to this one: a fine-tune's ``parent`` chain, oldest first."""
    chain = [cfg]
    while "parent" in chain[0]:
        chain.insert(0, chain[0]["parent"])
    return chain


def reproduce_line(cfg: dict) -> str:
    """How to rerun this generator from scratch: one command per phase, each fine-tuning the previous one's final/."""
    chain = phases(cfg)
    if len(chain) == 1:
        return f"`{train_command(cfg, 'outputs/toy-eg3d')}` (resumes if interrupted)"
    outs = [f"outputs/toy-eg3d-phase{i + 1}" for i in range(len(chain) - 1)] + ["outputs/toy-eg3d"]
    commands = [
        train_command(dict(phase, init_from=f"{outs[i - 1]}/final" if i else None), outs[i])
        for i, phase in enumerate(chain)
    ]
    return ", then ".join(f"phase {i + 1} `{c}`" for i, c in enumerate(commands)) + " (each resumes if interrupted)"


def shipped_recipe(run: Path) -> dict:
    """The run's train_config.json with its lineage; read before the export overwrites the generator it fine-tuned.

    Runs that predate recorded lineage get their parent here (the trainer's own lookup, from the repo root).
    """
    from e3dge.toy.distill import parent_recipe

    cfg = json.loads((run / "train_config.json").read_text())
    parent = None if "parent" in cfg else parent_recipe(cfg.get("init_from"))
    return {**cfg, **({"parent": parent} if parent else {})}


def _phase_summary(phase: dict) -> str:
    warmup = f", {phase['warmup_steps']}-step warm-up" if phase.get("warmup_steps") else ""
    return (
        f"{phase['steps']} steps, batch {phase['batch_size']}, Adam lr {phase['lr']} (cosine to x{phase['lr_final_ratio']}{warmup}), "
        f"seed {phase['seed']}"
    )


def write_card(run: Path, hardware: str, note: str = "") -> Path:
    if (run / "history.json").is_file():
        history = json.loads((run / "history.json").read_text())
    else:  # a run stopped early: its log
        from e3dge.training.loop import LOG, read_log

        history = read_log(run / LOG)
    cfg = json.loads((ASSETS / "train_config.json").read_text())  # written by the export, lineage included
    model_cfg = json.loads((ASSETS / "config.json").read_text())
    size_mb = (ASSETS / "model.safetensors").stat().st_size / 1e6
    chain = phases(cfg)
    last = history[-50:]
    mean = {k: sum(h[k] for h in last) / len(last) for k in ("image", "depth", "mask", "density", "probe")}
    gates_path = ROOT / "benchmarks" / "results" / "toy_gates.md"
    gates = gates_path.read_text() if gates_path.exists() else "(run benchmarks/toy_gates.py)\n"
    lines = [
        "# toy-eg3d: a tiny EG3D distilled from e3dge's procedural heads",
        "",
        "The official EG3D architecture (e3dge.backbones.eg3d.network.TriPlaneGenerator) at toy size: z 32 (the procedural",
        f"heads' latent), w {model_cfg['w_dim']}, {model_cfg['mapping_kwargs']['num_layers']}-layer mapping (camera-conditioned the EG3D way, with",
        "`c_gen_conditioning_zero=True` so w depends on z only), StyleGAN2 backbone to",
        f"{model_cfg['plane_resolution']}x{model_cfg['plane_resolution']}x{model_cfg['plane_channels']} tri-planes (orthogonal projection),",
        f"OSG decoder (hidden {model_cfg['decoder_hidden']}), volume rendering (neural resolution {model_cfg['neural_rendering_resolution']},",
        f"{model_cfg['rendering_kwargs']['depth_resolution']}+{model_cfg['rendering_kwargs']['depth_resolution_importance']} samples per ray),",
        "SuperresolutionHybrid2X to 128x128. Weights: model.safetensors "
        f"({size_mb:.1f} MB). Not a face model: it draws the toy world's heads only.",
        "",
        "## Training",
        "",
        "Regression (no discriminator) onto exact procedural renders of fresh latents at random cameras",
        f"(yaw +-{cfg['yaw_range']}, pitch +-{cfg['pitch_range']} rad): L1 on the raw render (x{cfg['w_image']}),",
        f"L1 on the SR image pooled to {cfg['target_resolution']} (x{cfg['w_sr']}), depth L1 on the head (x{cfg['w_depth']}),",
        f"opacity L1 (x{cfg['w_mask']}), log-density L1 at points vs sigmoid(-sdf/{cfg['sdf_beta']})/{cfg['sdf_beta']} (x{cfg['w_density']}),",
        f"and a linear probe w -> factor scores (x{cfg['w_probe']}) that keeps attributes linear in W.",
        f"Every {cfg['ray_subset_every']}nd step renders random rays of the {cfg['target_resolution']}x{cfg['target_resolution']} grid instead of a",
        f"{cfg['train_resolution']}x{cfg['train_resolution']} image (full-resolution detail at the same cost). No perceptual term (LPIPS",
        "cannot be imported on the machines this was trained on).",
        "",
        "- " + "; then fine-tuned: ".join(_phase_summary(p) for p in chain),
        f"- wall time{' (last phase)' if len(chain) > 1 else ''}: {history[-1]['time_s'] / 60:.1f} min on {hardware}",
        f"- last 50 steps: image L1 {mean['image']:.4f}, depth L1 {mean['depth']:.4f}, opacity L1 {mean['mask']:.4f}, "
        f"log-density L1 {mean['density']:.4f}, probe MSE {mean['probe']:.4f}",
        *([f"- note: {note}"] if note else []),
        f"- reproduce: {reproduce_line(cfg)}",
        "",
        "## Quality gates (held-out latents)",
        "",
        gates.split("\n", 2)[-1] if gates.startswith("#") else gates,
    ]
    card = ASSETS / "README.md"
    card.write_text("\n".join(lines))
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--hardware", default="2 shared CPU cores, no GPU")
    parser.add_argument("--note", default="", help="extra line for the training section (e.g. a schedule change)")
    parser.add_argument("--card-only", action="store_true", help="rewrite the card, keep the weights")
    args = parser.parse_args()
    ASSETS.mkdir(parents=True, exist_ok=True)
    if not args.card_only:
        recipe = shipped_recipe(args.run)
        if (args.run / "final" / "model.safetensors").is_file():
            for name in ("config.json", "model.safetensors"):
                shutil.copyfile(args.run / "final" / name, ASSETS / name)
        else:  # a run stopped early: export its latest checkpoint
            from e3dge.toy.distill import export_checkpoint

            export_checkpoint(args.run / "checkpoint.safetensors", ASSETS)
            print(f"note: {args.run} has no final/; exported its checkpoint.safetensors")
        (ASSETS / "train_config.json").write_text(json.dumps(recipe, indent=2))
    print(f"wrote {write_card(args.run, args.hardware, args.note)}")


if __name__ == "__main__":
    main()
