"""Procedural heads: a seeded map z -> ~20 factors -> SDF + colour field, with attribute labels.

Everything is batched torch and exact, so the toy world has ground truth for geometry and
attributes. Coordinates follow EG3D/FFHQ: y up, the face looks along +z, the head fits inside
the box [-0.5, 0.5]^3 and the face surface lies near the camera pivot (0, 0, 0.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "FACTOR_NAMES",
    "HAIR_PALETTE",
    "HAIR_NAMES",
    "HeadLabels",
    "HeadFactorMap",
    "head_sdf_parts",
    "head_sdf",
    "head_albedo",
    "sdf_at",
    "density_from_sdf",
]

FACTOR_NAMES: tuple[str, ...] = (
    "head_size",  # 0 overall scale 0.92 .. 1.08
    "head_width",  # 1 skull x radius
    "head_length",  # 2 skull y radius
    "jaw_width",  # 3
    "nose_length",  # 4
    "nose_width",  # 5
    "eye_spacing",  # 6
    "eye_size",  # 7
    "ear_size",  # 8
    "smile",  # 9 mouth curvature: < 0.5 frown, > 0.5 smile
    "mouth_width",  # 10
    "hair_volume",  # 11 hair cap thickness
    "hair_line",  # 12 how low the hair comes on the forehead
    "glasses",  # 13 > 0.5: glasses on
    "skin_tone",  # 14
    "hair_colour",  # 15 palette index = floor(4 u)
    "hair_brightness",  # 16
    "iris_colour",  # 17
    "lip_colour",  # 18
    "glasses_colour",  # 19
)
"""The factors, each uniform in [0, 1] (the normal CDF of one orthogonal projection of z)."""

HAIR_PALETTE = torch.tensor([[0.08, 0.06, 0.05], [0.35, 0.20, 0.10], [0.85, 0.70, 0.40], [0.65, 0.22, 0.08]])
HAIR_NAMES = ("black", "brown", "blonde", "red")
_F = {name: i for i, name in enumerate(FACTOR_NAMES)}


@dataclass
class HeadLabels:
    """Ground-truth attributes of a batch of heads (all ``[N]``)."""

    smile: torch.Tensor  # float in [-1, 1], mouth-corner lift (positive = smile)
    is_smiling: torch.Tensor  # bool, smile > 0
    glasses: torch.Tensor  # bool
    hair_colour: torch.Tensor  # long index into HAIR_NAMES
    head_size: torch.Tensor  # float scale, about 0.92 .. 1.08
    skin_tone: torch.Tensor  # float in [0, 1], 0 = light


class HeadFactorMap:
    """Fixed, seeded map from a latent ``z [N, z_dim]`` (standard normal) to factors ``[N, 20]`` in [0, 1].

    Each factor is ``Phi(q_i . z)`` for orthonormal rows ``q_i``, so factors are independent and
    uniform, and every binary attribute is a half-space of z (linearly separable by design).
    """

    def __init__(self, z_dim: int = 32, seed: int = 2024):
        if z_dim < len(FACTOR_NAMES):
            raise ValueError(f"z_dim must be >= {len(FACTOR_NAMES)}, got {z_dim}")
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(z_dim, z_dim, generator=g, dtype=torch.float64))
        self.z_dim, self.seed = z_dim, seed
        self.rows = q[:, : len(FACTOR_NAMES)].T.contiguous().float()  # [F, z_dim]

    def sample_z(self, n: int, seed: int) -> torch.Tensor:
        """Seeded standard-normal latents ``[n, z_dim]``."""
        return torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(seed))

    def factors(self, z: torch.Tensor) -> torch.Tensor:
        """``z [N, z_dim]`` -> factors ``[N, F]`` in (0, 1)."""
        x = z.float() @ self.rows.T.to(z.device)
        return 0.5 * (1 + torch.erf(x / math.sqrt(2)))

    @staticmethod
    def labels(factors: torch.Tensor) -> HeadLabels:
        """Attribute labels of heads with these factors."""
        smile = _smile(factors)
        return HeadLabels(
            smile=smile,
            is_smiling=smile > 0,
            glasses=factors[:, _F["glasses"]] > 0.5,
            hair_colour=(factors[:, _F["hair_colour"]] * 4).long().clamp(0, 3),
            head_size=0.92 + 0.16 * factors[:, _F["head_size"]],
            skin_tone=factors[:, _F["skin_tone"]],
        )


def _smile(u: torch.Tensor) -> torch.Tensor:
    return 2 * u[..., _F["smile"]] - 1


# ----------------------------------------------------------------------------- SDF primitives
# Points are passed as separate coordinate tensors (x, y, z) and centres/radii as floats or
# per-point tensors, so nothing is stacked or filled: the field stays cheap on CPU.
def _len3(x, y, z):
    return torch.sqrt(x * x + y * y + z * z)


def _ellipsoid(x, y, z, rx, ry, rz):
    """Approximate (bound-preserving near the surface) ellipsoid SDF centred at 0."""
    k0 = _len3(x / rx, y / ry, z / rz)
    k1 = _len3(x / (rx * rx), y / (ry * ry), z / (rz * rz)).clamp_min(1e-6)
    return k0 * (k0 - 1) / k1


def _capsule(x, y, z, a, b, radius):
    """Capsule from point ``a`` to ``b`` (3-tuples of floats or per-point tensors)."""
    pax, pay, paz = x - a[0], y - a[1], z - a[2]
    bax, bay, baz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    h = ((pax * bax + pay * bay + paz * baz) / (bax * bax + bay * bay + baz * baz)).clamp(0, 1)
    return _len3(pax - bax * h, pay - bay * h, paz - baz * h) - radius


def _torus_xy(x, y, z, big: float, small: float):
    """Torus centred at 0 lying in a plane parallel to xy (a glasses rim)."""
    ring = torch.sqrt(x * x + y * y) - big
    return torch.sqrt(ring * ring + z * z) - small


def _smin(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum (blend radius k)."""
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def head_sdf_parts(p: torch.Tensor, u: torch.Tensor, photo: bool = False) -> dict[str, torch.Tensor]:
    """Signed distances ``[P]`` of each part at points ``p [P, 3]`` for per-point factors ``u [P, F]``.

    ``photo=True`` adds detail only the "real photos" have (earrings).
    """
    s = 0.92 + 0.16 * u[:, _F["head_size"]]
    x, y, z = p[:, 0] / s, p[:, 1] / s, p[:, 2] / s  # head-local coordinates, rescaled by s at the end
    ax = x.abs()  # left/right symmetric parts

    srx = 0.175 + 0.03 * u[:, _F["head_width"]]
    sry = 0.21 + 0.03 * u[:, _F["head_length"]]
    skull = _ellipsoid(x, y - 0.06, z + 0.01, srx, sry, 0.21)
    jaw = _ellipsoid(x, y + 0.09, z - 0.05, 0.11 + 0.04 * u[:, _F["jaw_width"]], 0.13, 0.15)
    neck = _capsule(x, y, z, (0.0, -0.12, -0.03), (0.0, -0.36, -0.05), 0.085)
    face = _smin(_smin(skull, jaw, 0.06), neck, 0.05)

    nose_len = 0.035 + 0.03 * u[:, _F["nose_length"]]
    nose = _capsule(x, y, z, (0.0, 0.05, 0.18), (0.0, -0.03, 0.215 + nose_len), 0.018 + 0.012 * u[:, _F["nose_width"]])

    ex = 0.055 + 0.02 * u[:, _F["eye_spacing"]]
    er = 0.022 + 0.008 * u[:, _F["eye_size"]]
    eyes = _len3(ax - ex, y - 0.045, z - 0.165) - er

    ear_ry = 0.045 + 0.02 * u[:, _F["ear_size"]]
    ears = _ellipsoid(ax - (srx - 0.005), y - 0.02, z + 0.01, 0.022, ear_ry, 0.03)

    # Lips: a tube along a parabola y = y0 + c x^2 on the front of the jaw; c is the smile.
    mw = 0.04 + 0.02 * u[:, _F["mouth_width"]]
    smile = _smile(u)
    xc = torch.maximum(torch.minimum(x, mw), -mw)
    lips = _len3(x - xc, y - (-0.105 + smile * 0.03 * (xc / mw) ** 2), z - (0.2 - 1.2 * xc * xc)) - 0.014

    hair_t = 0.015 + 0.035 * u[:, _F["hair_volume"]]
    hair_shell = _ellipsoid(x, y - 0.07, z + 0.02, srx + hair_t, sry + hair_t, 0.21 + hair_t)
    hair_line = 0.12 + 0.06 * (1 - u[:, _F["hair_line"]])
    top = hair_line + 0.3 * z.clamp_min(0) - y  # < 0 above the hairline (higher at the front)
    back = torch.maximum(z + 0.02, -0.1 - y)  # < 0 behind the ears, down to the nape
    hair = torch.maximum(hair_shell, torch.minimum(top, back))

    parts = {"face": face, "nose": nose, "eyes": eyes, "ears": ears, "lips": lips, "hair": hair}

    gz = 0.225
    rims = _torus_xy(ax - ex - 0.005, y - 0.045, z - gz, 0.04, 0.009)
    bridge = _capsule(ax, y, z, (0.0, 0.055, gz), (0.02, 0.055, gz), 0.008)
    arms = _capsule(ax, y, z, (ex + 0.045, 0.05, gz), (srx + 0.012, 0.05, -0.03), 0.007)
    glasses = torch.minimum(torch.minimum(rims, bridge), arms)
    parts["glasses"] = torch.where(u[:, _F["glasses"]] > 0.5, glasses, torch.ones_like(glasses))

    if photo:
        parts["earrings"] = _len3(ax - (srx + 0.005), y - (0.008 - ear_ry), z) - 0.012
    return {k: v * s for k, v in parts.items()}


def head_sdf(p: torch.Tensor, u: torch.Tensor, photo: bool = False) -> torch.Tensor:
    """Signed distance ``[P]`` of the whole head (negative inside)."""
    return _combine(head_sdf_parts(p, u, photo))


def _combine(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    d = _smin(parts["face"], parts["nose"], 0.03)
    d = _smin(d, parts["ears"], 0.015)
    d = _smin(d, parts["lips"], 0.012)
    d = torch.minimum(d, parts["eyes"])
    d = torch.minimum(d, parts["hair"])
    d = torch.minimum(d, parts["glasses"])
    if "earrings" in parts:
        d = torch.minimum(d, parts["earrings"])
    return d


def _lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t[:, None]


def head_albedo(p: torch.Tensor, u: torch.Tensor, parts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Albedo ``[P, 3]`` in [0, 1] at (surface) points: skin, lips, eyes with irises, hair, glasses."""
    if parts is None:
        parts = head_sdf_parts(p, u)
    dev = p.device
    light = torch.tensor([0.93, 0.78, 0.68], device=dev)
    dark = torch.tensor([0.42, 0.27, 0.18], device=dev)
    skin = _lerp(light.expand(len(p), 3), dark.expand(len(p), 3), u[:, _F["skin_tone"]])
    colour = skin
    base = torch.minimum(torch.minimum(parts["face"], parts["nose"]), parts["ears"])

    def blend(
        colour: torch.Tensor, part: torch.Tensor, other: torch.Tensor, target: torch.Tensor, width: float = 0.004
    ):
        w = torch.sigmoid((other - part) / width)
        return colour + (target - colour) * w[:, None]

    lip_col = _lerp(
        torch.tensor([0.75, 0.35, 0.35], device=dev).expand(len(p), 3),
        torch.tensor([0.55, 0.12, 0.2], device=dev).expand(len(p), 3),
        u[:, _F["lip_colour"]],
    )
    colour = blend(colour, parts["lips"], base, lip_col)

    # Eyes: white sclera, coloured iris and dark pupil facing +z.
    s = (0.92 + 0.16 * u[:, _F["head_size"]])[:, None]
    q = p / s
    ex = 0.055 + 0.02 * u[:, _F["eye_spacing"]]
    side = torch.where(q[:, 0] >= 0, ex, -ex)
    v = q - torch.stack((side, torch.full_like(side, 0.045), torch.full_like(side, 0.165)), -1)
    cos = v[:, 2] / torch.linalg.norm(v, dim=-1).clamp_min(1e-6)
    iris_col = _lerp(
        torch.tensor([0.15, 0.35, 0.75], device=dev).expand(len(p), 3),
        torch.tensor([0.35, 0.2, 0.08], device=dev).expand(len(p), 3),
        u[:, _F["iris_colour"]],
    )
    eye_col = torch.where(
        (cos > 0.8)[:, None], iris_col, torch.tensor([0.95, 0.95, 0.93], device=dev).expand(len(p), 3)
    )
    eye_col = torch.where((cos > 0.94)[:, None], torch.full_like(eye_col, 0.03), eye_col)
    colour = blend(colour, parts["eyes"], torch.minimum(base, parts["lips"]), eye_col, 0.002)

    idx = (u[:, _F["hair_colour"]] * 4).long().clamp(0, 3)
    hair_col = HAIR_PALETTE.to(dev)[idx] * (0.75 + 0.5 * u[:, _F["hair_brightness"]])[:, None]
    colour = blend(colour, parts["hair"], torch.minimum(base, parts["eyes"]), hair_col.clamp(0, 1), 0.003)

    palette = torch.tensor([[0.05, 0.05, 0.05], [0.75, 0.1, 0.1], [0.85, 0.7, 0.2]], device=dev)
    gl_col = palette[(u[:, _F["glasses_colour"]] * 3).long().clamp(0, 2)]
    rest = torch.minimum(torch.minimum(base, parts["eyes"]), torch.minimum(parts["hair"], parts["lips"]))
    colour = blend(colour, parts["glasses"], rest, gl_col, 0.002)
    if "earrings" in parts:
        colour = blend(
            colour, parts["earrings"], rest, torch.tensor([0.95, 0.8, 0.3], device=dev).expand(len(p), 3), 0.002
        )
    return colour.clamp(0, 1)


def sdf_at(factors: torch.Tensor, points: torch.Tensor, photo: bool = False) -> torch.Tensor:
    """SDF ``[N, M]`` of heads with ``factors [N, F]`` at world ``points [N, M, 3]``."""
    n, m, _ = points.shape
    u = factors[:, None, :].expand(n, m, factors.shape[-1]).reshape(n * m, -1)
    return head_sdf(points.reshape(n * m, 3), u, photo).reshape(n, m)


def density_from_sdf(sdf: torch.Tensor, beta: float = 0.01) -> torch.Tensor:
    """Volume density from SDF as in VolSDF/StyleSDF: ``sigmoid(-sdf / beta) / beta``."""
    return torch.sigmoid(-sdf / beta) / beta
