"""The bundled examples and the offline main job: photo -> 3D on the toy bundle.

Examples are made, not downloaded: photo-like toy heads (the toy world's "real photos", already
framed as EG3D crops) and scikit-image's astronaut photo (aligned with e3dge.faces like any photo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.core.files import write_png
from e3dge.faces.errors import FaceError
from e3dge.inversion.outputs import contact_sheet, done_with, write_inversion
from e3dge.inversion.pipeline import InversionPipeline
from e3dge.inversion.refine import RefineMode
from e3dge.toy import HeadFactorMap, render_heads

__all__ = [
    "Example",
    "toy_photo_examples",
    "astronaut_example",
    "bundled_examples",
    "DemoResult",
    "run_demo",
    "TOY_NOTICE",
]

TOY_NOTICE = (
    "note: the offline toy model only knows procedural toy heads; it cannot look like a real person. "
    "Real faces need real weights (e.g. --model eg3d-ffhq --optimize, or an E3DGE bundle)."
)


@dataclass
class Example:
    """One input of the main job."""

    name: str
    pixels: np.ndarray  # uint8 [H, W, 3]
    align: bool  # photos go through e3dge.faces; toy renders are already EG3D crops


def toy_photo_examples(num: int = 3, seed: int = 31337, resolution: int = 128) -> list[Example]:
    """Photo-like toy heads at held-out latents and mild random poses."""

    gen = torch.Generator().manual_seed(seed)
    fm = HeadFactorMap()
    z = torch.randn(num, fm.z_dim, generator=gen)
    yaw = (torch.rand(num, generator=gen) * 2 - 1) * 0.35
    pitch = (torch.rand(num, generator=gen) * 2 - 1) * 0.15
    with torch.no_grad():
        r = render_heads(fm.factors(z), label_from_yaw_pitch(yaw, pitch), resolution, photo=True)
    pixels = ((r.image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Example(f"toy_head_{i}", pixels[i], align=False) for i in range(num)]


def astronaut_example() -> Example | None:
    """scikit-image's astronaut (Eileen Collins, public domain), or None without scikit-image."""
    try:
        from skimage import data
    except ImportError:
        return None
    return Example("astronaut", np.asarray(data.astronaut()), align=True)


def bundled_examples(num_toy: int = 3) -> list[Example]:
    """Toy photo-like heads, then the astronaut when scikit-image is installed."""
    astronaut = astronaut_example()
    return toy_photo_examples(num_toy) + ([astronaut] if astronaut is not None else [])


@dataclass
class DemoResult:
    """What the main job wrote."""

    folders: dict[str, Path]
    sheet: Path
    skipped: list[str] = field(default_factory=list)  # already done with the same options (resumed)
    failed: dict[str, str] = field(default_factory=dict)


def run_demo(
    out_dir: str | Path,
    model: str = "toy",
    refine: RefineMode | None = "pose+code",
    steps: int = 30,
    frames: int = 24,
    views: int = 3,
    num_toy: int = 3,
    progress: bool = True,
) -> DemoResult:
    """Invert the bundled examples into ``out_dir/<name>/`` and write ``out_dir/sheet.png``; resumes finished examples."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pipe = InversionPipeline.from_pretrained(model)
    options = {"model": model, "refine": refine, "steps": steps, "frames": frames, "views": views}
    result = DemoResult({}, out / "sheet.png")
    rows = []
    for ex in tqdm(bundled_examples(num_toy), desc="demo", disable=not progress):
        folder = out / ex.name
        result.folders[ex.name] = folder
        if done_with(folder, options):
            result.skipped.append(ex.name)
        else:
            try:
                inv = pipe.invert(ex.pixels, align=ex.align, refine=refine, steps=steps)
            except FaceError as err:
                result.failed[ex.name] = str(err)
                continue
            write_inversion(pipe, inv, folder, views=views, orbit_frames=frames, options=options)
        names = ["aligned.png", "reconstruction.png", "depth.png"] + sorted(p.name for p in folder.glob("view_*.png"))
        rows.append([np.asarray(Image.open(folder / n).convert("RGB")) for n in names])
    if rows:
        write_png(result.sheet, contact_sheet(rows))
    return result
