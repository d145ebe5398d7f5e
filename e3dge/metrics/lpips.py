"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features", v0.1) without torchvision.

Same computation as the reference ``lpips`` package (``LPIPS(net=..., version='0.1')``, inputs in
[-1, 1]): ScalingLayer -> AlexNet/VGG16 ``features`` taps -> unit-normalise channels (eps 1e-10) ->
squared difference -> 1x1 ``lin`` heads (no bias) -> spatial mean -> sum over taps.

Weights are never made up silently. Two files are needed:

* the ImageNet trunk, a torchvision state dict (``alexnet-owt-7be5be79.pth`` /
  ``vgg16-397923af.pth``; its ``features.*`` keys are loaded strictly, ``classifier.*`` is unused);
* the v0.1 linear heads, as shipped in the ``lpips`` wheel (``lpips/weights/v0.1/{alex,vgg}.pth``,
  keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``).

Search order for each: explicit path argument > local cache (trunk: ``torch.hub.get_dir()/checkpoints/``;
heads: an installed ``lpips`` package, found without importing it) > Hugging Face Hub repo
(``hub_repo_id`` or ``$E3DGE_LPIPS_HUB_REPO``; honours ``HF_HUB_OFFLINE``). If a file is missing,
construction fails with :class:`LPIPSWeightsNotFoundError` unless ``allow_random_backbone=True``.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from e3dge.core.errors import UserError, one_line, refused_global
from e3dge.core.hub import CheckpointNotFoundError, resolve_file

__all__ = [
    "LPIPS",
    "LPIPSWeightsNotFoundError",
    "WeightsFileError",
    "UncalibratedLPIPSWarning",
    "NET_SPECS",
    "alexnet_features",
    "vgg16_features",
    "FeatureTrunk",
    "ScalingLayer",
    "LinearHead",
    "normalize_channels",
    "load_torchvision_features",
    "find_backbone_weights",
    "find_lin_weights",
    "read_state_dict",
]

HUB_REPO_ENV = "E3DGE_LPIPS_HUB_REPO"
"""Environment variable naming a Hub repo that mirrors the trunk and head files (optional)."""


class LPIPSWeightsNotFoundError(FileNotFoundError):
    """A weight file LPIPS needs (trunk or heads) was found nowhere in the search order."""


class UncalibratedLPIPSWarning(UserWarning):
    """The LPIPS module runs with random weights: its outputs are NOT LPIPS values."""


@dataclass(frozen=True)
class NetSpec:
    """What LPIPS needs to know about one trunk."""

    file_name: str  # torchvision's checkpoint file name (torch hub cache name)
    url: str  # where torchvision downloads it from (for error messages only)
    channels: tuple[int, ...]  # channels of each tapped activation
    taps: tuple[int, ...]  # ``features`` indices whose outputs are tapped (ReLUs)
    min_size: int  # smallest H and W for which every tap is non-empty


NET_SPECS: dict[str, NetSpec] = {
    "alex": NetSpec(
        "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        (64, 192, 384, 256, 256),
        (1, 4, 7, 9, 11),  # relu1 .. relu5
        31,
    ),
    "vgg": NetSpec(
        "vgg16-397923af.pth",
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        (64, 128, 256, 512, 512),
        (3, 8, 15, 22, 29),  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
        16,
    ),
}
_NET_ALIASES = {"alex": "alex", "alexnet": "alex", "vgg": "vgg", "vgg16": "vgg"}


def alexnet_features() -> nn.Sequential:
    """torchvision's ``AlexNet.features`` layout (indices 0-12), so its state-dict keys match."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def vgg16_features() -> nn.Sequential:
    """torchvision's ``VGG16.features`` layout (config "D", no batch norm, indices 0-30)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU()]
            in_ch = int(v)
    return nn.Sequential(*layers)


_FEATURE_BUILDERS = {"alex": alexnet_features, "vgg": vgg16_features}


class FeatureTrunk(nn.Module):
    """A torchvision-named ``features`` stack that returns the activations at the LPIPS taps."""

    def __init__(self, net: str) -> None:
        super().__init__()
        self.spec = NET_SPECS[net]
        self.features = _FEATURE_BUILDERS[net]()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        last = self.spec.taps[-1]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.spec.taps:
                outs.append(x)
            if i == last:
                break
        return outs


class ScalingLayer(nn.Module):
    """Maps [-1, 1] inputs to the trunk's ImageNet normalisation (LPIPS v0.1 constants)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class LinearHead(nn.Module):
    """1x1 conv C -> 1 without bias, dropout before it (train mode only); keys ``model.1.weight``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def normalize_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide each spatial feature vector by its L2 norm over channels (plus ``eps``), as LPIPS."""
    return x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + eps)


class WeightsFileError(UserError, ValueError):
    """A weights file that is corrupt, not a state dict, or refused by torch's weights-only unpickler."""


def _read_pth(path: Path) -> object:
    """``torch.load(weights_only=True)``; a refused global or a corrupt file becomes one :class:`WeightsFileError` line."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = refused_global(err)
        if found:
            raise WeightsFileError(
                f"{path}: refused to load it: it references '{found}', which a weights file never needs "
                "(torch weights_only=True); the file may be malicious, nothing in it was executed"
            ) from None
        raise WeightsFileError(f"{path}: not a readable PyTorch weights file ({one_line(err)[:200]})") from None
    except (RuntimeError, EOFError, ValueError, KeyError, AttributeError, TypeError) as err:
        raise WeightsFileError(
            f"{path}: not a readable PyTorch weights file ({type(err).__name__}: {one_line(err)[:200]})"
        ) from None


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pth`` state dict loaded with ``weights_only=True``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except SafetensorError as err:
            raise WeightsFileError(f"{path}: not a valid safetensors file ({one_line(err)[:200]})") from None
    state = _read_pth(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsFileError(f"{path} is not a state dict of tensors (got {type(state).__name__})")
    return dict(state)


def load_torchvision_features(trunk: FeatureTrunk, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
    """Load the ``features.*`` keys of a torchvision AlexNet/VGG16 state dict strictly.

    ``classifier.*`` keys (the ImageNet head) are allowed and ignored; any other key, a missing
    ``features`` key or a shape mismatch is an error.
    """
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    other = sorted(k for k in state if not k.startswith(("features.", "classifier.")))
    if not feats or other:
        raise ValueError(
            f"{source} is not a torchvision {trunk.spec.file_name} state dict: "
            f"{len(feats)} 'features.*' keys, unexpected keys {other[:5]}"
        )
    try:
        trunk.features.load_state_dict(feats, strict=True)
    except RuntimeError as err:
        raise WeightsFileError(
            f"{source} does not match the torchvision layout of {trunk.spec.file_name}: {one_line(err)[:300]}"
        ) from err


def _hub_file(
    repo_id: str | None, filename: str, revision: str | None, env: str = HUB_REPO_ENV
) -> tuple[Path | None, str]:
    """Path of ``filename`` from a Hub repo (cache first; offline-aware), and a line for error messages."""
    if not repo_id:
        return None, f"Hugging Face Hub: no repo configured (hub_repo_id= or ${env})"

    try:
        return resolve_file(repo_id, filename, revision=revision), f"Hugging Face Hub {repo_id}/{filename}: found"
    except CheckpointNotFoundError as err:
        return None, f"Hugging Face Hub {repo_id}/{filename}: {err}"


def _lpips_package_dirs() -> list[Path]:
    """Folders of an installed ``lpips`` package, found without importing it (it imports torchvision)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def _explicit(path: str | os.PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise LPIPSWeightsNotFoundError(f"{what} file {p} does not exist")
    return p


def find_backbone_weights(
    net: str, path: str | os.PathLike | None = None, hub_repo_id: str | None = None, revision: str | None = None
) -> tuple[Path | None, list[str]]:
    """Locate the torchvision trunk file: ``path`` > torch hub cache > Hub repo. Returns (path or None, places tried)."""
    spec = NET_SPECS[_NET_ALIASES[net]]
    if path is not None:
        return _explicit(path, "backbone weights"), [f"explicit path {path}"]
    tried = []
    cached = Path(torch.hub.get_dir()) / "checkpoints" / spec.file_name
    if cached.is_file():
        return cached, [f"torch hub cache {cached}: found"]
    tried.append(f"torch hub cache {cached}: missing")
    found, line = _hub_file(hub_repo_id, spec.file_name, revision)
    tried.append(line)
    return found, tried


def find_lin_weights(
    net: str, path: str | os.PathLike | None = None, hub_repo_id: str | None = None, revision: str | None = None
) -> tuple[Path | None, list[str]]:
    """Locate the v0.1 head file: ``path`` > installed ``lpips`` package > Hub repo (``weights/v0.1/<net>.pth``)."""
    net = _NET_ALIASES[net]
    if path is not None:
        return _explicit(path, "LPIPS linear-head weights"), [f"explicit path {path}"]
    tried = []
    roots = _lpips_package_dirs()
    for root in roots:
        candidate = root / "weights" / "v0.1" / f"{net}.pth"
        if candidate.is_file():
            return candidate, [f"lpips package {candidate}: found"]
        tried.append(f"lpips package {candidate}: missing")
    if not roots:
        tried.append("lpips package: not installed")
    found, line = _hub_file(hub_repo_id, f"weights/v0.1/{net}.pth", revision)
    tried.append(line)
    return found, tried


class LPIPS(nn.Module):
    """LPIPS v0.1 distance between two image batches in [-1, 1]; returns ``[N]`` (no torchvision needed).

    ``is_calibrated`` is True only when both the ImageNet trunk and the v0.1 heads were loaded;
    ``sources`` says where each came from. All parameters are frozen; gradients flow to the inputs.
    """

    def __init__(
        self,
        net: str = "alex",
        backbone_weights: str | os.PathLike | None = None,
        lin_weights: str | os.PathLike | None = None,
        hub_repo_id: str | None = None,
        hub_revision: str | None = None,
        allow_random_backbone: bool = False,
    ) -> None:
        super().__init__()
        if net not in _NET_ALIASES:
            raise ValueError(f"net must be one of {sorted(_NET_ALIASES)}, got {net!r}")
        self.net_name = _NET_ALIASES[net]
        spec = NET_SPECS[self.net_name]
        with torch.random.fork_rng(devices=[]):  # deterministic init that leaves the caller's RNG alone
            torch.manual_seed(0)
            self.scaling_layer = ScalingLayer()
            self.net = FeatureTrunk(self.net_name)
            self.lins = nn.ModuleList(LinearHead(c) for c in spec.channels)
        hub_repo_id = hub_repo_id or os.environ.get(HUB_REPO_ENV) or None
        self.sources: dict[str, str] = {}

        trunk_path, trunk_tried = find_backbone_weights(self.net_name, backbone_weights, hub_repo_id, hub_revision)
        lin_path, lin_tried = find_lin_weights(self.net_name, lin_weights, hub_repo_id, hub_revision)
        missing = []
        if trunk_path is None:
            missing.append(
                f"ImageNet trunk {spec.file_name} (torchvision state dict). Searched:\n    "
                + "\n    ".join(trunk_tried)
                + f"\n  Fix: download {spec.url} to {Path(torch.hub.get_dir()) / 'checkpoints'}/, "
                "or pass backbone_weights=PATH."
            )
        else:
            load_torchvision_features(self.net, read_state_dict(trunk_path), source=str(trunk_path))
            self.sources["backbone"] = str(trunk_path)
        if lin_path is None:
            missing.append(
                f"v0.1 linear heads ({self.net_name}.pth from the lpips package). Searched:\n    "
                + "\n    ".join(lin_tried)
                + "\n  Fix: `pip install --no-deps lpips` (only its weight files are read), "
                f"or pass lin_weights=PATH to lpips/weights/v0.1/{self.net_name}.pth."
            )
        else:
            self._load_lins(read_state_dict(lin_path), str(lin_path))
            self.sources["lin"] = str(lin_path)

        if missing:
            text = f"LPIPS(net={self.net_name!r}) cannot be calibrated; missing:\n  " + "\n  ".join(missing)
            if not allow_random_backbone:
                raise LPIPSWeightsNotFoundError(
                    text + "\nRefusing to compute uncalibrated numbers as LPIPS; pass allow_random_backbone=True "
                    "only for tests and smoke runs."
                )
            if lin_path is None:  # uniform heads = the 'lpips=False' baseline: plain sum over channels
                for lin in self.lins:
                    nn.init.ones_(lin.model[1].weight)
                self.sources["lin"] = "ones (uncalibrated)"
            self.sources.setdefault("backbone", "random seed 0 (uncalibrated)")
            warnings.warn(
                "!!! " + text + "\nallow_random_backbone=True: using random/uniform weights. "
                "These outputs are NOT LPIPS values; do not report them as LPIPS. !!!",
                UncalibratedLPIPSWarning,
                stacklevel=2,
            )
        self.is_calibrated: bool = not missing
        self.requires_grad_(False)
        self.eval()

    def _load_lins(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load ``lin{k}.model.1.weight`` from an lpips-format state dict (other keys must be absent)."""
        expected = {f"lin{k}.model.1.weight" for k in range(len(self.lins))}
        got = set(state)
        if got != expected:
            raise ValueError(
                f"{source} is not an lpips v0.1 '{self.net_name}' head file: missing {sorted(expected - got)}, "
                f"unexpected {sorted(got - expected)[:5]}"
            )
        for k, lin in enumerate(self.lins):
            w = state[f"lin{k}.model.1.weight"]
            if w.shape != lin.model[1].weight.shape:
                raise ValueError(
                    f"{source}: lin{k} weight has shape {list(w.shape)}, expected {list(lin.model[1].weight.shape)}"
                )
            with torch.no_grad():
                lin.model[1].weight.copy_(w)

    def _check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for name, t in (("x", x), ("y", y)):
            if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[1] != 3:
                shape = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"LPIPS input {name} must be an RGB batch [N, 3, H, W], got {shape}")
        if x.shape != y.shape:
            raise ValueError(f"LPIPS inputs must have the same shape, got {list(x.shape)} and {list(y.shape)}")
        min_size = NET_SPECS[self.net_name].min_size
        if min(x.shape[2:]) < min_size:
            raise ValueError(f"LPIPS({self.net_name!r}) needs H, W >= {min_size}, got {list(x.shape[2:])}")

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, normalize: bool = False, return_per_layer: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Distance ``[N]`` between ``x`` and ``y`` ``[N, 3, H, W]`` in [-1, 1] (``normalize=True``: in [0, 1])."""
        self._check(x, y)
        if normalize:
            x, y = 2 * x - 1, 2 * y - 1
        feats_x = self.net(self.scaling_layer(x))
        feats_y = self.net(self.scaling_layer(y))
        per_layer = []
        for fx, fy, lin in zip(feats_x, feats_y, self.lins):
            diff = (normalize_channels(fx) - normalize_channels(fy)) ** 2
            per_layer.append(lin(diff).mean(dim=(2, 3)).reshape(-1))
        total = per_layer[0]
        for d in per_layer[1:]:
            total = total + d
        return (total, per_layer) if return_per_layer else total
