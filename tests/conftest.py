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
    from e3dge.backbones.eg3d import TriPlaneGenerator, eg3d_config

    torch.manual_seed(0)
    G = TriPlaneGenerator(**eg3d_config("tiny")).eval()
    with torch.no_grad():  # non-zero noise strengths and w_avg so every parameter matters
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        G.backbone.mapping.w_avg.normal_()
    return G
