"""Shared fixtures; every test runs offline with telemetry off."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def tiny_generator():
    """A seeded tiny EG3D (same classes as the official model, few channels) in eval mode."""
    from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config

    torch.manual_seed(0)
    G = TriPlaneGenerator(**eg3d_config("tiny")).eval()
    with torch.no_grad():  # non-zero noise strengths and w_avg so every parameter matters
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        G.backbone.mapping.w_avg.normal_()
    return G


def write_astronaut_clip(path, frames: int):
    """A short mp4 of skimage's astronaut with a slow, smooth camera motion (video inversion tests)."""
    import imageio.v2 as imageio
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    photo = Image.fromarray(skdata.astronaut())
    with imageio.get_writer(str(path), fps=8, quality=9, macro_block_size=2) as writer:
        for i in range(frames):
            writer.append_data(
                np.asarray(
                    photo.rotate(0.5 * i, resample=Image.BICUBIC, translate=(2 * i, i)).resize(
                        (384, 384), Image.LANCZOS
                    )
                )
            )
    return path
