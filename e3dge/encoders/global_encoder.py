"""Global encoder E0 of E3DGE: pSp-style IR-SE + FPN encoder to EG3D ``W+`` offsets, plus a pose head.

Image ``[N, 3, H, W]`` in [-1, 1] -> resized to ``input_size`` -> IR-SE body with taps ``c1`` (end of
stage 2, 1/4 res), ``c2`` (stage 3, 1/8), ``c3`` (stage 4, 1/16) -> FPN ``p2 = up(c3) + latlayer1(c2)``,
``p1 = up(p2) + latlayer2(c1)`` -> one GradualStyleBlock per ``ws`` row: coarse rows from ``c3``,
medium rows from ``p2``, fine rows from ``p1`` (pSp's layout and key names).

Default split for EG3D (``num_ws=14``): coarse 0-2, medium 3-6, fine 7-13. EG3D's 256^2 tri-plane
StyleGAN2 reads rows 0-1 at 4^2, 1-3 at 8^2, 3-5 at 16^2, 5-7 at 32^2, 7-9 at 64^2, 9-11 at 128^2, 11-13
at 256^2, and the super-resolution module reads row 13. So coarse rows drive the 4^2-8^2 blocks (overall
shape and pose-independent geometry), medium rows 16^2-32^2 (facial structure), fine rows 64^2-256^2 and
SR (texture, detail). This is pSp's resolution-to-head mapping (3 / 4 / 11 of 18 rows for 4-8 / 16-32 /
64-1024) with EG3D's fewer fine rows; ``coarse_ws`` / ``medium_ws`` change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.core.hub import BoolField, IntField, ListField, PretrainedMixin
from e3dge.core.options import OptionError
from e3dge.encoders.irse import IRSE_DEPTHS, make_body, make_input_layer, stage_units
from e3dge.encoders.pose import PoseHead
from e3dge.encoders.styles import GradualStyleBlock, upsample_add

__all__ = ["EncoderOutput", "GlobalEncoder", "encoder_config", "resize_to", "approx_num_parameters"]

MAX_PARAMETERS = 1 << 29
"""Largest encoder a config may describe (~537 M parameters, 2 GiB in float32; IR-SE50 has 210 M)."""


@dataclass
class EncoderOutput:
    """What E0 predicts for a batch of N images."""

    ws_offset: torch.Tensor  # [N, num_ws, w_dim]: residual predicted by the network
    ws: torch.Tensor  # [N, num_ws, w_dim]: w_avg + ws_offset, ready for G.synthesis
    pose: (
        torch.Tensor | None
    )  # [N, 2]: (yaw, pitch) offsets from frontal, radians (None: the backbone's own pose estimator)
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # c1, c2, c3, p2, p1, pooled


def encoder_config(name: str, num_ws: int = 14, w_dim: int = 512) -> dict[str, Any]:
    """Constructor kwargs of a named size: ``ir_se50`` (pSp / E3DGE, 256^2 input) or ``tiny`` (tests, 64^2)."""
    if name == "ir_se50":
        return dict(
            num_ws=num_ws, w_dim=w_dim, input_size=256, stem_width=64, widths=(64, 128, 256, 512), units=IRSE_DEPTHS[50]
        )
    if name == "tiny":
        return dict(
            num_ws=num_ws,
            w_dim=w_dim,
            input_size=64,
            stem_width=16,
            widths=(16, 32, 64, 128),
            units=(1, 1, 1, 1),
            pose_hidden=32,
        )
    raise ValueError(f"unknown encoder config {name!r}; choose 'ir_se50' or 'tiny'")


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square batch -> ``size x size``: average pooling for integer factors (as E3DGE), else antialiased bilinear."""
    h = x.shape[-1]
    if h == size:
        return x
    if h > size and h % size == 0:
        return F.avg_pool2d(x, kernel_size=h // size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=h > size)


def approx_num_parameters(config: dict[str, Any]) -> int:
    """Parameters of the 3x3 convolutions that dominate E0's size (IR-SE body + style heads), from a config."""
    widths, units = config.get("widths", (64, 128, 256, 512)), config.get("units", IRSE_DEPTHS[50])
    stem, size = config.get("stem_width", 64), config.get("input_size", 256)
    body, in_ch = 0, stem
    for width, n in zip(widths, units):
        body += 9 * (in_ch * width + width * width) + (n - 1) * 18 * width * width
        in_ch = width
    num_ws, coarse, medium = config.get("num_ws", 14), config.get("coarse_ws", 3), config.get("medium_ws", 4)
    convs = sum(
        k * max(int(math.log2(size // d)), 1) for k, d in ((coarse, 16), (medium, 8), (num_ws - coarse - medium, 4))
    )
    w_dim, fpn = config.get("w_dim", 512), widths[-1]
    return body + 9 * convs * w_dim * max(w_dim, fpn)


class GlobalEncoder(PretrainedMixin, nn.Module):
    """E0: image in [-1, 1] -> :class:`EncoderOutput` (``W+`` offsets around ``w_avg`` and camera pose)."""

    predicts_pose = True  # the pose head (Stage I trains it with L_pose)

    CONFIG_SPEC = {
        "num_ws": IntField(1, 64),
        "w_dim": IntField(1, 2048),
        "input_size": IntField(32, 1024, power_of_two=True),
        "in_channels": IntField(1, 16),
        "stem_width": IntField(1, 1024),
        "widths": ListField(IntField(1, 1024), 4, 4),
        "units": ListField(IntField(1, 64), 4, 4),
        "use_se": BoolField(),
        "coarse_ws": IntField(1, 64),
        "medium_ws": IntField(0, 64),
        "pose_hidden": IntField(1, 4096),
    }
    """Accepted config values; :meth:`validate_config` also bounds their product (:data:`MAX_PARAMETERS`)."""

    def __init__(
        self,
        num_ws: int = 14,
        w_dim: int = 512,
        input_size: int = 256,
        in_channels: int = 3,
        stem_width: int = 64,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        units: tuple[int, ...] = IRSE_DEPTHS[50],
        use_se: bool = True,
        coarse_ws: int = 3,
        medium_ws: int = 4,
        pose_hidden: int = 256,
    ) -> None:
        super().__init__()
        widths, units = tuple(int(w) for w in widths), tuple(int(u) for u in units)
        if len(widths) != 4 or len(units) != 4:
            raise ValueError(f"the FPN taps need exactly 4 stages, got widths={widths}, units={units}")
        if input_size < 32 or input_size & (input_size - 1):
            raise ValueError(
                f"input_size must be a power of two >= 32 (the deepest map is input_size/16), got {input_size}"
            )
        fine_ws = num_ws - coarse_ws - medium_ws
        if coarse_ws < 1 or medium_ws < 0 or fine_ws < 0:
            raise ValueError(
                f"need coarse_ws >= 1, medium_ws >= 0, coarse_ws + medium_ws <= num_ws; got {coarse_ws}, {medium_ws}, {num_ws}"
            )
        self.config: dict[str, Any] = dict(
            num_ws=num_ws,
            w_dim=w_dim,
            input_size=input_size,
            in_channels=in_channels,
            stem_width=stem_width,
            widths=list(widths),
            units=list(units),
            use_se=use_se,
            coarse_ws=coarse_ws,
            medium_ws=medium_ws,
            pose_hidden=pose_hidden,
        )
        self.num_ws, self.w_dim, self.input_size, self.in_channels = num_ws, w_dim, input_size, in_channels
        self.coarse_ws, self.medium_ws = coarse_ws, medium_ws

        self.input_layer = make_input_layer(in_channels, stem_width)
        self.body = make_body(stage_units(stem_width, widths, units), use_se)
        ends = [sum(units[: i + 1]) - 1 for i in range(4)]
        self.tap_index = {ends[1]: "c1", ends[2]: "c2", ends[3]: "c3"}  # IR-SE50: 6, 20, 23 as pSp
        fpn = widths[3]
        sizes = [input_size // 16] * coarse_ws + [input_size // 8] * medium_ws + [input_size // 4] * fine_ws
        self.styles = nn.ModuleList(GradualStyleBlock(fpn, w_dim, s) for s in sizes)
        self.latlayer1 = nn.Conv2d(widths[2], fpn, kernel_size=1)
        self.latlayer2 = nn.Conv2d(widths[1], fpn, kernel_size=1)
        self.pose_head = PoseHead(fpn, pose_hidden)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @classmethod
    def validate_config(cls, config: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Check keys, types and ranges, the ws split and the overall size; nothing is allocated."""
        config = super().validate_config(config, where)
        prefix = f"{where}: " if where else ""
        num_ws, coarse, medium = config.get("num_ws", 14), config.get("coarse_ws", 3), config.get("medium_ws", 4)
        if coarse + medium > num_ws:
            raise OptionError(f"{prefix}coarse_ws + medium_ws ({coarse} + {medium}) must be <= num_ws ({num_ws})")
        n = approx_num_parameters(config)
        if n > MAX_PARAMETERS:
            raise OptionError(
                f"{prefix}this encoder would have about {n / 1e6:.0f} M parameters, more than the {MAX_PARAMETERS / 1e6:.0f} M e3dge accepts"
            )
        return config

    @torch.no_grad()
    def set_w_avg(self, w_avg: torch.Tensor) -> None:
        """Copy the generator's mean latent (``G.backbone.mapping.w_avg``, ``[w_dim]``) into the encoder."""
        if w_avg.shape != (self.w_dim,):
            raise ValueError(f"w_avg must have shape [{self.w_dim}], got {list(w_avg.shape)}")
        self.w_avg.copy_(w_avg)

    def load_psp_weights(self, state: dict[str, torch.Tensor], prefix: str = "encoder.") -> list[str]:
        """Load a pSp GradualStyleEncoder state dict (keys under ``prefix`` in a pSp checkpoint).

        Every pSp key must match a key and shape here (same ``num_ws`` as the checkpoint's styles);
        the E3DGE additions (``pose_head.*``, ``w_avg``) keep their values. Returns those keys.
        """
        if prefix:
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        own = self.state_dict()
        extra = sorted(k for k in own if k.startswith("pose_head.") or k == "w_avg")
        unexpected = sorted(set(state) - set(own))
        missing = sorted(set(own) - set(state) - set(extra))
        wrong = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
        if unexpected or missing or wrong:
            raise ValueError(
                f"not a matching pSp encoder state dict: {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
                f"{len(missing)} missing (e.g. {missing[:3]}), shape mismatches {wrong[:3]}"
            )
        self.load_state_dict({**own, **state}, strict=True)
        return extra

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"GlobalEncoder expects images [N, {self.in_channels}, H, W] in [-1, 1], got {shape}")
        if x.shape[2] != x.shape[3]:
            raise ValueError(
                f"GlobalEncoder expects square images (EG3D crops), got H x W = {x.shape[2]} x {x.shape[3]}"
            )
        if x.shape[0] == 0:
            raise ValueError("GlobalEncoder got an empty batch")

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        """Encode images ``[N, C, S, S]`` in [-1, 1] (any square size; resized to ``input_size``)."""
        self._check(x)
        h = self.input_layer(resize_to(x, self.input_size))
        taps: dict[str, torch.Tensor] = {}
        for i, unit in enumerate(self.body):
            h = unit(h)
            if i in self.tap_index:
                taps[self.tap_index[i]] = h
        c1, c2, c3 = taps["c1"], taps["c2"], taps["c3"]
        p2 = upsample_add(c3, self.latlayer1(c2))
        p1 = upsample_add(p2, self.latlayer2(c1))
        sources = [c3] * self.coarse_ws + [p2] * self.medium_ws + [p1] * (self.num_ws - self.coarse_ws - self.medium_ws)
        offset = torch.stack([style(src) for style, src in zip(self.styles, sources)], dim=1)
        pooled = c3.mean(dim=(2, 3))
        pose = self.pose_head(pooled)
        ws = offset + self.w_avg.to(offset.dtype)
        assert offset.shape == (x.shape[0], self.num_ws, self.w_dim), offset.shape
        feats = dict(c1=c1, c2=c2, c3=c3, p2=p2, p1=p1, pooled=pooled)
        return EncoderOutput(ws_offset=offset, ws=ws, pose=pose, features=feats)

    def extra_repr(self) -> str:
        c = self.config
        n = sum(p.numel() for p in self.parameters())
        return f"num_ws={c['num_ws']}, w_dim={c['w_dim']}, input_size={c['input_size']}, units={c['units']}, {n / 1e6:.2f}M params"
