"""Parity of e3dge's StyleSDF backbone and official E3DGE flow with the official code, plus CPU timings of the converted bundle.

The reference folder is made OUTSIDE this repository by running the official StyleSDF (@1c99510) and CVPR23-E3DGE
(@7666d5b) code on CPU with random weights (pure-PyTorch stand-ins for their CUDA ops) and saving:
- ``ffhq1024x1024.pt``, ``ffhq_vol_renderer.pt``, ``E3DGE_Full_Runner.pt`` in the official formats (torch.save dicts);
- ``stylesdf_ref.npz``: z, the mean latents (1000 z, seed 2), truncation 0.5, the truncated renderer / decoder latents,
  two cameras (azimuth, elevation), nine fixed decoder noise maps, and the official outputs (thumbnail, 256-channel
  features, depth = sum of weights x z, xyz, sdf at the samples, 1024 image, the SIREN network at 500 points);
- ``e3dge_ref.npz``: an input image [1, 3, 256, 256], the official E3DGE intermediates (E0 offsets and W+, the pose,
  G0 thumbnail and depth, residual, E1 maps, aligned residual, f3d, f2d, fused, FiLM alpha / beta every 4th pixel,
  final thumbnail, depth and 1024 image) at the source view and at azimuth + 0.3.
Neither the official code nor these files are part of e3dge. This script reads them with numpy / weights_only
torch.load, converts the .pt files with e3dge's converter, and writes results/stylesdf_parity.{json,md}.

    PYTHONPATH=. python benchmarks/stylesdf_parity.py --reference /scratch/out /scratch/out_seed2 [--bundle /tmp/e3dge-stylesdf-parity]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from e3dge.backbones.stylesdf.network import StyleSDFLatents
from e3dge.backbones.stylesdf.official import load_official_stylesdf
from e3dge.encoders.stylesdf_flow import StyleSDFModels, encode_face, reference_view, render_query
from e3dge.inversion import InversionPipeline
from e3dge.inversion.convert_official import convert_e3dge, convert_stylesdf

TARGETS = {"renderer": 1e-4, "siren": 1e-3, "image": 1e-3, "e3dge": 1e-3}
"""The gates: renderer thumb / depth / features <= 1e-4, final image <= 1e-3, E3DGE intermediates <= 1e-3. The raw
SIREN at 500 arbitrary points gets 1e-3: its phases are scaled by about 30 per layer, so any change of the fp32
summation order moves its outputs by ~1e-4; the float64 rows show e3dge's fp32 is as close to exact as the official."""


def _diff(a: torch.Tensor, b: np.ndarray) -> float:
    b = torch.from_numpy(b).float()
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return float((a.detach().float() - b).abs().max())


@torch.no_grad()
def stylesdf_rows(ref_dir: Path) -> dict[str, tuple[float, str]]:
    """StyleSDF: mapping, camera, network, volume render, decoder."""
    R = np.load(ref_dir / "stylesdf_ref.npz")
    t = lambda k: torch.from_numpy(R[k])  # noqa: E731
    G = load_official_stylesdf(ref_dir / "ffhq1024x1024.pt")
    lat = G.mapping(
        t("z"),
        truncation=float(R["truncation"]),
        mean=StyleSDFLatents(t("mean_latent_renderer"), t("mean_latent_decoder")),
    )
    cam = G.camera(t("locations")[:, 0], t("locations")[:, 1])
    rgb, sdf, feats = G.renderer.network(t("net_points"), t("net_viewdir"), G.renderer_plus(t("net_latent")))
    exact = copy.deepcopy(G.renderer.network).double()  # the same network in float64: the rounding-free answer
    _, sdf64, feats64 = exact(
        t("net_points").double(), t("net_viewdir").double(), G.renderer_plus(t("net_latent")).double()
    )
    vol = G.render_volume(t("renderer_latent"), cam)
    image = G.decoder(vol.features, t("decoder_latent"), [t(f"noise_{i}") for i in range(9)])
    return {
        "renderer latent (mapping + truncation)": (_diff(lat.renderer, R["renderer_latent"]), "renderer"),
        "decoder latent (mapping + truncation)": (_diff(G.decoder_plus(lat.decoder), R["decoder_latent"]), "renderer"),
        "camera cam2world": (_diff(cam.cam2world[:, :3], R["cam2world"]), "renderer"),
        "SIREN sdf at 500 points": (_diff(sdf, R["net_sdf"]), "siren"),
        "SIREN features at 500 points": (_diff(feats, R["net_features"]), "siren"),
        "SIREN features: official fp32 vs float64": (_diff(feats64, R["net_features"]), "siren"),
        "SIREN features: e3dge fp32 vs float64": (float((feats.double() - feats64).abs().max()), "siren"),
        "thumbnail 64": (_diff(vol.rgb, R["rgb_thumb"]), "renderer"),
        "depth 64": (_diff(vol.depth, R["depth"]), "renderer"),
        "features 256 x 64 x 64": (_diff(vol.features, R["features"]), "renderer"),
        "surface xyz": (_diff(vol.xyz, R["xyz"]), "renderer"),
        "sdf at the 64 x 64 x 24 samples": (_diff(vol.sdf, R["sdf"]), "renderer"),
        "image 1024": (_diff(image, R["image"]), "image"),
    }


@torch.no_grad()
def e3dge_rows(ref_dir: Path, bundle: Path) -> tuple[dict[str, tuple[float, str]], dict[str, float]]:
    """E3DGE full inference through the converted bundle, with the reference's mean latents and decoder noise."""
    timings = {}
    if not (bundle / "encoder").is_dir():
        t0 = time.perf_counter()
        convert_stylesdf(
            ref_dir / "ffhq1024x1024.pt", ref_dir / "ffhq_vol_renderer.pt", bundle, mean_samples=1000, overwrite=True
        )
        timings["convert stylesdf (1000 mean samples)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        convert_e3dge(ref_dir / "E3DGE_Full_Runner.pt", bundle)
        timings["convert e3dge"] = time.perf_counter() - t0
    R, S = np.load(ref_dir / "e3dge_ref.npz"), np.load(ref_dir / "stylesdf_ref.npz")
    t = lambda k: torch.from_numpy(R[k])  # noqa: E731
    pipe = InversionPipeline.from_pretrained(bundle)
    m = pipe.flow.models
    mean = StyleSDFLatents(
        t("mean_latent_renderer_wplus")[:, 0], t("mean_latent_decoder_wplus")[:, 0]
    )  # rows are equal
    models = StyleSDFModels(m.generator, m.encoder, m.pose, mean, m.local_encoder, m.aligner_2d, m.fusion)
    noise = [torch.from_numpy(S[f"noise_{i}"]) for i in range(9)]
    face = encode_face(models, t("input_image"))
    ref = reference_view(models, face)
    rows = {
        "E0 renderer W+": (_diff(face.latents.renderer, R["renderer_wplus"]), "e3dge"),
        "E0 decoder W+": (_diff(face.latents.decoder, R["decoder_wplus"]), "e3dge"),
        "pose (azimuth, elevation)": (_diff(torch.stack([face.azimuth, face.elevation], 1), R["pose"]), "e3dge"),
        "G0 thumbnail (input view)": (_diff(ref.thumb, R["g0_thumb"]), "e3dge"),
        "residual 256": (_diff(ref.residual, R["residual"]), "e3dge"),
        "E1 map of the residual": (_diff(ref.feature_map, R["e1_ref_featmap"]), "e3dge"),
    }
    for view in ("src", "novel"):
        loc = t(f"{view}_location")
        cam = models.generator.camera(loc[:, 0], loc[:, 1])
        tr = render_query(models, face, ref, cam, noise=noise)
        sub = lambda x: x.reshape(1, 64, 64, 24, -1)[:, ::4, ::4]  # noqa: E731  (the reference keeps every 4th pixel)
        name = "source" if view == "src" else "novel (azimuth + 0.3)"
        rows.update(
            {
                f"{name}: aligned residual (E_ADA)": (
                    _diff(tr.aligned_residual, R[f"{view}_aligned_residual"]),
                    "e3dge",
                ),
                f"{name}: E1 map of the aligned residual": (
                    _diff(tr.feature_map, R[f"{view}_e1_que_featmap"]),
                    "e3dge",
                ),
                f"{name}: f3d": (_diff(sub(tr.f3d), R[f"{view}_f3d_sub"]), "e3dge"),
                f"{name}: f2d": (_diff(sub(tr.f2d), R[f"{view}_f2d_mask_sub"][..., :256]), "e3dge"),
                f"{name}: visibility": (
                    _diff(tr.visibility.reshape(1, 4096, 24)[..., 0], R[f"{view}_vis_mask"]),
                    "e3dge",
                ),
                f"{name}: fused features": (_diff(sub(tr.fused), R[f"{view}_fused_sub"]), "e3dge"),
                f"{name}: FiLM alpha": (_diff(sub(tr.alpha), R[f"{view}_film_alpha_sub"]), "e3dge"),
                f"{name}: FiLM beta": (_diff(sub(tr.beta), R[f"{view}_film_beta_sub"]), "e3dge"),
                f"{name}: final thumbnail": (_diff(tr.output.image_raw, R[f"{view}_final_thumb"]), "e3dge"),
                f"{name}: final image 1024": (_diff(tr.output.image, R[f"{view}_final_image"]), "e3dge"),
            }
        )
    photo = ((t("input_image").clamp(-1, 1)[0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pipe.invert(photo, align=False)  # warm-up
    t0 = time.perf_counter()
    inv = pipe.invert(photo, align=False)
    timings["invert (E0 + pose + hybrid reconstruction at 1024)"] = time.perf_counter() - t0
    for quality in ("preview", "full"):
        t0 = time.perf_counter()
        pipe.render(inv, yaw=0.3, quality=quality)
        timings[f"render {quality} at a new view"] = time.perf_counter() - t0
    return rows, timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--reference",
        required=True,
        type=Path,
        nargs="+",
        help="folder(s) with the official-format files and reference .npz "
        "(one per independent draw of weights and inputs)",
    )
    ap.add_argument(
        "--bundle",
        type=Path,
        default=Path("/tmp/e3dge-stylesdf-parity"),
        help="where to convert the official-format files",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    sets = {}
    for i, ref in enumerate(args.reference):
        rows = stylesdf_rows(ref)
        e3, timings = e3dge_rows(ref, args.bundle.with_name(f"{args.bundle.name}-{i}"))
        rows.update(e3)
        sets[str(ref)] = {
            "rows": {
                k: {"max_abs_diff": v, "target": TARGETS[g], "pass": v <= TARGETS[g]} for k, (v, g) in rows.items()
            },
            "timings": timings,
        }
    result = {
        "sets": sets,
        "threads": torch.get_num_threads(),
        "official": {"StyleSDF": "1c99510", "CVPR23-E3DGE": "7666d5b"},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stylesdf_parity.json").write_text(json.dumps(result, indent=1))
    names = list(sets)
    lines = [
        "# StyleSDF + official E3DGE flow: parity with the official code (random weights)",
        "",
        "`PYTHONPATH=. python benchmarks/stylesdf_parity.py --reference DIR1 DIR2` (each DIR made by the official code outside the repo "
        "from its own draw of weights and inputs; see the script).",
        "",
        "| quantity | " + " | ".join(f"set {i + 1} max abs diff" for i in range(len(names))) + " | target | pass |",
        "|---|" + "---|" * len(names) + "---|---|",
    ]
    for k, first in sets[names[0]]["rows"].items():
        diffs = [sets[n]["rows"][k]["max_abs_diff"] for n in names]
        ok = all(sets[n]["rows"][k]["pass"] for n in names)
        lines.append(
            f"| {k} | "
            + " | ".join(f"{d:.2e}" for d in diffs)
            + f" | {first['target']:.0e} | {'yes' if ok else 'NO'} |"
        )
    lines += [
        "",
        f"CPU timings, seconds ({result['threads']} threads, official sizes, converted bundle):",
        "",
        "| step | " + " | ".join(f"set {i + 1}" for i in range(len(names))) + " |",
        "|---|" + "---|" * len(names),
    ]
    for k in sets[names[0]]["timings"]:
        lines.append(f"| {k} | " + " | ".join(f"{sets[n]['timings'].get(k, float('nan')):.2f}" for n in names) + " |")
    (args.out / "stylesdf_parity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
