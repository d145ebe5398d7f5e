"""Where Stage I gets its pieces: the frozen generator, perceptual/identity criteria, real images."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from e3dge.backbones.eg3d import TriPlaneGenerator, eg3d_config

__all__ = ["load_generator", "RealImages", "ToyPhotos", "make_real_source"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def load_generator(spec: str, device: torch.device | str = "cpu") -> TriPlaneGenerator:
    """``toy`` (shipped toy EG3D), ``tiny-random`` (seeded random tiny EG3D), or anything ``from_pretrained`` reads."""
    if spec == "toy":
        from e3dge.toy import load_toy_generator

        G = load_toy_generator()
    elif spec == "tiny-random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            G = TriPlaneGenerator(**eg3d_config("tiny"))
    else:
        G = TriPlaneGenerator.from_pretrained(spec)
    return G.to(device).eval().requires_grad_(False)


class RealImages:
    """Unlabelled aligned face crops from a folder (e.g. ``e3dge align`` output), cycled in a seeded order."""

    def __init__(self, folder: str | Path, resolution: int) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"real_data folder {str(folder)!r} does not exist; align photos first: e3dge align IN_DIR {folder}")
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"real_data folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        self.resolution = resolution

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, 3, R, R]`` in [-1, 1]."""
        idx = torch.randint(len(self.files), (n,), generator=generator).tolist()
        imgs = []
        for i in idx:
            with Image.open(self.files[i]) as im:
                im = im.convert("RGB").resize((self.resolution, self.resolution), Image.LANCZOS)
                imgs.append(torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1)
        return torch.stack(imgs)


class ToyPhotos:
    """The toy world's "real photos": photo-like procedural heads (texture, freckles, speculars) at prior poses."""

    def __init__(self, resolution: int, z_dim: int = 32, yaw_std: float = 0.3, pitch_std: float = 0.15, yaw_max: float = 0.7, pitch_max: float = 0.3) -> None:
        from e3dge.toy import HeadFactorMap

        self.resolution, self.factor_map = resolution, HeadFactorMap(z_dim)
        self.prior = (yaw_std, pitch_std, yaw_max, pitch_max)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        from e3dge.cameras import label_from_yaw_pitch
        from e3dge.toy import render_heads

        ys, ps, ym, pm = self.prior
        z = torch.randn(n, self.factor_map.z_dim, generator=generator)
        yaw = (torch.randn(n, generator=generator) * ys).clamp(-ym, ym)
        pitch = (torch.randn(n, generator=generator) * ps).clamp(-pm, pm)
        return render_heads(self.factor_map.factors(z), label_from_yaw_pitch(yaw, pitch), self.resolution, photo=True).image


def make_real_source(spec: str | None, resolution: int, cfg=None):
    """None, :class:`ToyPhotos` (``'toy-photos'``) or :class:`RealImages` (a folder)."""
    if spec is None:
        return None
    if spec == "toy-photos":
        kw = {} if cfg is None else dict(yaw_std=cfg.yaw_std, pitch_std=cfg.pitch_std, yaw_max=cfg.yaw_max, pitch_max=cfg.pitch_max)
        return ToyPhotos(resolution, **kw)
    return RealImages(spec, resolution)
