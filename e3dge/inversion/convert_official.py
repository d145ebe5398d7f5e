"""Official StyleSDF / E3DGE checkpoints -> an e3dge pipeline bundle (safetensors), without unpickling any object.

Two steps, as the official files come in two sets:
1. :func:`convert_stylesdf` (``ffhq1024x1024.pt`` + ``ffhq_vol_renderer.pt``): the generator (``g_ema``), the volume
   discriminator as pose estimator (``d`` of the volume renderer file) and one fixed draw of the mean latents;
2. :func:`convert_e3dge` (``E3DGE_Full_Runner.pt`` or ``E3DGE_2DAlignOnly_Runner.pt``) into that bundle: E0
   (``encoder``), E1 (``netLocal``), E_ADA (``grid_align``), the fusion (``Fuse_sft_block``), the official InterfaceGAN
   boundaries as editing directions and, optionally, the Toonify generator and its encoder.
Every network loads strictly (names and shapes checked first); sections a converter does not need (optimizer
states, the training discriminator, iteration counters) are listed in the report. The weights stay under their
non-commercial licences: the bundle's README says so, and e3dge never ships or re-hosts them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from e3dge.backbones.official_torch import OfficialTorchFileError, read_torch_checkpoint
from e3dge.backbones.stylesdf.network import StyleSDFMeanLatents
from e3dge.backbones.stylesdf.official import stylesdf_from_state
from e3dge.core.errors import UserError
from e3dge.core.files import check_destination, write_json, write_text
from e3dge.core.hub import CONFIG_NAME, CheckpointFileError, check_tensors, read_config, tensor_specs
from e3dge.editing.direction import Direction
from e3dge.editing.files import load_interfacegan
from e3dge.encoders.aligner import AlignerConfig
from e3dge.encoders.fusion import FeatureFusion
from e3dge.encoders.local import LocalEncoderConfig
from e3dge.encoders.stylesdf_encoder import StyleSDFEncoderConfig
from e3dge.encoders.volume_pose import VolumePoseConfig
from e3dge.inversion.bundle import PIPELINE_FILE, BundleSpec, ComponentSpec, check_component_folder, read_bundle_spec

__all__ = ["ConversionReport", "convert_stylesdf", "convert_e3dge", "OFFICIAL_BOUNDARIES", "LICENCE_NOTE"]

OFFICIAL_BOUNDARIES = {"Bangs": (-1.5, 2.0), "Smiling": (-1.4, 1.5), "No_Beard": (-1.5, 1.5), "Young": (-2.0, 2.0)}
"""The official editing boundaries E3DGE loads and the strength range its demo sweeps (lower, upper)."""
LICENCE_NOTE = (
    "Converted from the official StyleSDF (CC BY-NC-SA 4.0, University of Washington) and E3DGE (S-Lab License 1.0) "
    "weights: non-commercial use only, attribution required, derivatives under the same terms. Do not re-host this bundle; "
    "each user downloads the official files and converts them."
)


@dataclass
class ConversionReport:
    """What a conversion wrote and what it left out."""

    out: Path
    components: dict[str, int] = field(default_factory=dict)  # slot -> parameters
    ignored: dict[str, list[str]] = field(default_factory=dict)  # file -> top-level keys not read
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A short human summary."""
        out = [f"{slot}: {n / 1e6:.2f} M parameters" for slot, n in self.components.items()]
        out += [f"{Path(f).name}: ignored {', '.join(keys)}" for f, keys in self.ignored.items() if keys]
        return out + self.notes


def _strip_module(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DistributedDataParallel's ``module.`` prefix (the official runner strips it on load)."""
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


def _load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str) -> torch.nn.Module:
    state, own = _strip_module(state), module.state_dict()
    check_tensors(tensor_specs(state), own, where)
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return module.eval().requires_grad_(False)


def _save(module, out: Path, slot: str, report: ConversionReport) -> ComponentSpec:
    tmp = out / f".{slot}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    module.save_pretrained(tmp)
    if (out / slot).exists():
        shutil.rmtree(out / slot)
    tmp.replace(out / slot)
    report.components[slot] = sum(p.numel() for p in module.parameters())
    return ComponentSpec(type(module).__name__, subfolder=slot)


def _write_spec(out: Path, spec: BundleSpec) -> None:
    write_json(out / PIPELINE_FILE, spec.to_dict())
    card = out / "README.md"
    write_text(
        card, f"# {spec.description}\n\nComponents: {', '.join(spec.components)}.\n\n## Licence\n\n{LICENCE_NOTE}\n"
    )


def _sizes(configs: Mapping[str, Any] | None, slot: str, official: Any) -> Any:
    """The size config of ``slot``: the released one unless ``configs`` (tests, other releases) names another."""
    return (configs or {}).get(slot) or official


def convert_stylesdf(
    full: str | os.PathLike,
    vol: str | os.PathLike,
    out: str | os.PathLike,
    mean_samples: int = 10000,
    seed: int = 2,
    overwrite: bool = False,
    configs: Mapping[str, Any] | None = None,
) -> ConversionReport:
    """``ffhq1024x1024.pt`` + ``ffhq_vol_renderer.pt`` -> a bundle with the generator, the pose estimator and fixed mean latents.

    ``configs`` may give ``"generator"`` (a dict of rendering options the file does not store) and ``"pose_estimator"`` (a size config).
    """

    out = Path(out).expanduser()
    check_destination(out, overwrite, "folder for the converted bundle")
    full_ckpt = read_torch_checkpoint(full, ["g_ema"])
    vol_ckpt = read_torch_checkpoint(vol, ["g_ema", "d"])
    G = stylesdf_from_state(
        full_ckpt.sections["g_ema"], f"{full_ckpt.path} ['g_ema']", (configs or {}).get("generator")
    )
    if not G.full_pipeline:
        raise OfficialTorchFileError(
            f"{full_ckpt.path}: holds a volume renderer only; the first file must be the full model (ffhq1024x1024.pt)"
        )
    pose = _load_strict(
        _sizes(configs, "pose_estimator", VolumePoseConfig.official()).build(),
        vol_ckpt.sections["d"],
        f"{vol_ckpt.path} ['d']",
    )
    report = ConversionReport(
        out, ignored={str(full_ckpt.path): full_ckpt.ignored, str(vol_ckpt.path): vol_ckpt.ignored}
    )
    mine = G.state_dict()
    shared = [k for k in vol_ckpt.sections["g_ema"] if k in mine]
    if len(shared) != len(vol_ckpt.sections["g_ema"]):
        raise OfficialTorchFileError(
            f"{vol_ckpt.path}: its generator does not match {full_ckpt.path.name}'s renderer; are they from the same release?"
        )
    drift = max(float((vol_ckpt.sections["g_ema"][k].float() - mine[k]).abs().max()) for k in shared)
    report.notes.append(f"renderer weights of the two files differ by at most {drift:.3g} (the full model's are used)")
    mean = StyleSDFMeanLatents.estimate(G, mean_samples, seed)
    out.mkdir(parents=True, exist_ok=True)
    comps = {
        "generator": _save(G, out, "generator", report),
        "pose_estimator": _save(pose, out, "pose_estimator", report),
        "latent_mean": _save(mean, out, "latent_mean", report),
    }
    spec = BundleSpec(
        comps,
        "StyleSDF FFHQ 1024 (converted from the official files; non-commercial licence)",
        {"convention": "ffhq", "detector": "hog"},
        needs=["an E3DGE runner converted into this bundle (e3dge convert e3dge ...) to invert photos"],
    )
    _write_spec(out, spec)
    return report


def _directions(folder: Path, style_dim: int = 256) -> dict:
    """The official InterfaceGAN boundaries (renderer 256-d + decoder 512-d per attribute) as e3dge directions."""

    found = {}
    for name, rng in OFFICIAL_BOUNDARIES.items():
        paths = [folder / f"{part}_{name}" / "boundary.npy" for part in ("renderer", "decoder")]
        if not all(p.is_file() for p in paths):
            continue
        r = load_interfacegan(paths[0], name, w_dim=style_dim).vector
        d = load_interfacegan(paths[1], name, w_dim=2 * style_dim).vector
        found[name.lower()] = Direction(
            name.lower(),
            torch.cat([r, d]),
            None,
            f"official E3DGE InterfaceGAN boundaries ({name})",
            rng,
            {"layout": "stylesdf", "renderer_dim": style_dim},
        )
    if not found:
        raise UserError(
            f"{folder}: no official boundaries found (expected renderer_<Name>/boundary.npy and decoder_<Name>/boundary.npy "
            f"for {', '.join(OFFICIAL_BOUNDARIES)}); pass the repo's assets/editing_boundaries/stylesdf folder"
        )
    return found


def convert_e3dge(
    runner: str | os.PathLike,
    bundle: str | os.PathLike,
    boundaries: str | os.PathLike | None = None,
    toonify: str | os.PathLike | None = None,
    toonify_encoder: str | os.PathLike | None = None,
    mean_samples: int = 10000,
    seed: int = 2,
    configs: Mapping[str, Any] | None = None,
) -> ConversionReport:
    """An official E3DGE runner (+ boundaries, + the Toonify pair) into a bundle made by :func:`convert_stylesdf`.

    ``configs`` may give size configs for ``encoder``, ``local_encoder``, ``aligner_2d``, ``fusion`` (an int: channels) and
    ``toonify_generator`` (rendering options); the released sizes otherwise.
    """

    out = Path(bundle).expanduser()
    if not (out / PIPELINE_FILE).is_file():
        raise UserError(
            f"{out}: not a bundle; convert the StyleSDF files into it first (e3dge convert stylesdf FULL.pt VOL.pt {out})"
        )
    spec = read_bundle_spec(out / PIPELINE_FILE)
    if spec.components["generator"].cls != "StyleSDFGenerator":
        raise UserError(
            f"{out}: its generator is a {spec.components['generator'].cls}; the official E3DGE runners need the StyleSDF bundle"
        )
    if (toonify is None) != (toonify_encoder is None):
        raise UserError(
            "Toonify needs both files: --toonify Toonify400_1024x1024.pt and --toonify-encoder no_local_basic_trainer.pt"
        )
    if toonify is not None and toonify_encoder is not None:  # read every input before anything is written
        toon_g = read_torch_checkpoint(toonify, ["g_ema"])
        toon_e = read_torch_checkpoint(toonify_encoder, ["encoder"])
    ckpt = read_torch_checkpoint(runner, ["encoder"], optional=["netLocal", "grid_align", "Fuse_sft_block"])
    where = str(ckpt.path)
    report = ConversionReport(out, ignored={where: ckpt.ignored})
    if "iter" in ckpt.scalars:
        report.notes.append(f"{ckpt.path.name}: iteration {ckpt.scalars['iter']}")
    comps = dict(spec.components)
    enc_sizes = _sizes(configs, "encoder", StyleSDFEncoderConfig.official())
    modules = {"encoder": _load_strict(enc_sizes.build(), ckpt.sections["encoder"], f"{where} ['encoder']")}
    local = [k for k in ("netLocal", "grid_align", "Fuse_sft_block") if k in ckpt.sections]
    if local and local[:2] != ["netLocal", "grid_align"]:
        report.notes.append(
            f"{ckpt.path.name} has {', '.join(local)} but not both netLocal and grid_align: converted as global-only (E0)"
        )
    elif local:
        local_sizes = _sizes(configs, "local_encoder", LocalEncoderConfig.official())
        try:
            modules["local_encoder"] = _load_strict(
                local_sizes.build(), ckpt.sections["netLocal"], f"{where} ['netLocal']"
            )
        except (
            CheckpointFileError
        ) as err:  # the training scripts' HGPIFuNetGANResidual layout (468 tensors) is not the inference one
            raise CheckpointFileError(
                f"{err} (e3dge reads the official inference layout HGPIFuNetGANResidualResnetFC, 456 tensors; "
                "a netLocal in another layout cannot be used as it is)"
            ) from None
        modules["aligner_2d"] = _load_strict(
            _sizes(configs, "aligner_2d", AlignerConfig.official()).build(),
            ckpt.sections["grid_align"],
            f"{where} ['grid_align']",
        )
        if "Fuse_sft_block" in ckpt.sections:
            modules["fusion"] = _load_strict(
                FeatureFusion(_sizes(configs, "fusion", 256)),
                ckpt.sections["Fuse_sft_block"],
                f"{where} ['Fuse_sft_block']",
            )
        else:
            report.notes.append(
                f"{ckpt.path.name} has no Fuse_sft_block: the 2D alignment only (as E3DGE_2DAlignOnly_Runner)"
            )
    if toonify is not None:
        G_toon = stylesdf_from_state(
            toon_g.sections["g_ema"], f"{toon_g.path} ['g_ema']", (configs or {}).get("toonify_generator")
        )
        modules["toonify_generator"] = G_toon
        modules["toonify_encoder"] = _load_strict(
            enc_sizes.build(), toon_e.sections["encoder"], f"{toon_e.path} ['encoder']"
        )
        modules["toonify_latent_mean"] = StyleSDFMeanLatents.estimate(G_toon, mean_samples, seed)
        report.ignored[str(toon_g.path)], report.ignored[str(toon_e.path)] = toon_g.ignored, toon_e.ignored
    directions = None
    if boundaries is not None:  # read before anything is written: a bad folder leaves the bundle as it was
        style_dim = int(
            read_config(check_component_folder(out, spec.components["generator"], "generator") / CONFIG_NAME).get(
                "style_dim", 256
            )
        )
        directions = _directions(Path(boundaries).expanduser(), style_dim)
    for slot, module in modules.items():
        comps[slot] = _save(module, out, slot, report)
    if directions is not None:
        from e3dge.editing.files import save_directions

        save_directions(out / "directions", directions)
        spec.directions = "directions"
    kind = (
        "hybrid alignment (E0 + E1 + E_ADA + fusion)"
        if "fusion" in modules
        else "2D alignment (E0 + E1 + E_ADA)"
        if "local_encoder" in modules
        else "global encoder only"
    )
    stale = [slot for slot in ("local_encoder", "aligner_2d", "fusion") if slot not in modules and slot in comps]
    for slot in stale:  # a runner without a part replaces an older conversion's part
        del comps[slot]
    spec = BundleSpec(
        comps,
        f"E3DGE on StyleSDF FFHQ 1024, {kind}{', with Toonify' if toonify else ''} (converted official weights; non-commercial)",
        spec.aligner,
        spec.directions,
        [],
    )
    _write_spec(out, spec)
    for slot in stale:
        shutil.rmtree(out / slot, ignore_errors=True)
    return report
