"""Official StyleSDF checkpoints (``ffhq1024x1024.pt``, ``ffhq_vol_renderer.pt``) -> :class:`StyleSDFGenerator`, strictly.

The sizes the state dict implies (style width, SIREN depth and width, decoder resolution) are read from the
tensor shapes; the rendering options that are not stored (24 samples, 64^2 rays, 6 degree half-angle) are the
released ones. Every tensor must match the model by name and shape before anything is loaded.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

import torch

from e3dge.backbones.official_torch import OfficialTorchFileError, read_torch_checkpoint
from e3dge.backbones.stylesdf.network import StyleSDFGenerator, decoder_channels
from e3dge.core.hub import check_tensors, tensor_specs

__all__ = ["stylesdf_config_from_state", "stylesdf_from_state", "load_official_stylesdf"]

_PTS = re.compile(r"renderer\.network\.pts_linears\.(\d+)\.weight$")
_NOISE = re.compile(r"decoder\.noises\.noise_(\d+)$")


def stylesdf_config_from_state(state: Mapping[str, torch.Tensor], where: str) -> dict:
    """Constructor kwargs implied by an official ``g_ema`` state dict (shapes only)."""
    try:
        style_dim = int(state["style.0.weight"].shape[1])
        width = int(state["renderer.network.pts_linears.0.weight"].shape[0])
    except KeyError as err:
        raise OfficialTorchFileError(f"{where}: not a StyleSDF generator (no {err.args[0]!r})") from None
    depth = 1 + max(int(m.group(1)) for k in state if (m := _PTS.match(k)))
    config = dict(style_dim=style_dim, width=width, depth=depth, full_pipeline=False, size=1024)
    noises = {int(m.group(1)): state[k] for k in state if (m := _NOISE.match(k))}
    if noises:
        last = noises[max(noises)]
        size = int(last.shape[-1])
        if size < 8 or size > 2048 or size & (size - 1):
            raise OfficialTorchFileError(f"{where}: decoder noise of size {size} is not a power of two in 8..2048")
        first = int(noises[0].shape[-1])
        config.update(
            full_pipeline=True, size=size, renderer_resolution=first, **_channel_options(state, size, first, where)
        )
    return config


def _channel_options(state: Mapping[str, torch.Tensor], size: int, first: int, where: str) -> dict:
    """The (channel_multiplier, channel_max) whose StyleGAN2 channel table gives the stored decoder widths."""
    steps = int(math.log2(size // first))
    try:
        widths = [int(state["decoder.conv1.conv.weight"].shape[1])] + [
            int(state[f"decoder.convs.{2 * j}.conv.weight"].shape[1]) for j in range(steps)
        ]
    except KeyError as err:
        raise OfficialTorchFileError(f"{where}: the decoder is incomplete (no {err.args[0]!r})") from None
    for multiplier in (2, 1, 3, 4):
        for cap in sorted({512, *widths}, reverse=True):
            table = decoder_channels(size, multiplier, cap)
            if [table[first << j] for j in range(steps + 1)] == widths:
                return {"channel_multiplier": multiplier, "channel_max": cap}
    raise OfficialTorchFileError(f"{where}: decoder widths {widths} are not a StyleGAN2 channel table")


def stylesdf_from_state(
    state: Mapping[str, torch.Tensor], where: str, overrides: Mapping | None = None
) -> StyleSDFGenerator:
    """Build the generator a state dict describes (``overrides``: rendering options not stored) and load it strictly."""
    G = StyleSDFGenerator.build_checked({**stylesdf_config_from_state(state, where), **(overrides or {})}, where)
    check_tensors(tensor_specs(state), G.state_dict(), where)
    G.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return G.eval().requires_grad_(False)


def load_official_stylesdf(
    path: str | os.PathLike, key: str = "g_ema", overrides: Mapping | None = None
) -> StyleSDFGenerator:
    """Read ``key`` (``g_ema`` for inference) of an official StyleSDF ``.pt`` without unpickling any object.

    ``overrides`` sets options the file does not store (``n_samples``, ``half_fov_degrees``...; the released values by default).
    """
    ckpt = read_torch_checkpoint(path, [key])
    return stylesdf_from_state(ckpt.sections[key], f"{ckpt.path} [{key!r}]", overrides)
