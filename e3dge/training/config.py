"""Stage I options, named presets, and reading a config from a preset name or a JSON/YAML file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from e3dge.core.options import OptionError, check_keys, check_range
from e3dge.encoders.flows import ENCODER_SIZES
from e3dge.training.losses import Stage1LossWeights

__all__ = [
    "Stage1Config",
    "STAGE1_PRESETS",
    "METHODS",
    "RUN_ONLY_OPTIONS",
    "load_stage1_config",
    "check_dataclass_values",
]

RUN_ONLY_OPTIONS = ("out_dir", "threads", "checkpoint_every", "sample_every", "tensorboard")
"""Options that change how a run is carried out, not what it computes: free to differ on resume."""

METHODS = ("e3dge", "psp2d", "e4e")
"""``e3dge``: L_rec + L_geo + L_code + L_pose; ``psp2d``: L_rec only; ``e4e``: L_rec + delta regulariser + progressive W+."""


@dataclass
class Stage1Config:
    """Everything a Stage I run needs (units in comments). Saved next to the checkpoints."""

    out_dir: str = "outputs/stage1"
    generator: str = "toy"  # 'toy' (shipped), 'tiny-random' / 'tiny-random-stylesdf' (tests), a saved EG3D or StyleSDF folder, a registry name
    encoder: str = "tiny"  # E0 size (e3dge.encoders.flows.trainable_encoder): 'tiny' or 'ir_se50'
    method: str = "e3dge"  # one of METHODS
    steps: int = 600
    batch_size: int = 8  # per process
    lr: float = 5e-4  # Adam (paper: 5e-5 at batch 24 for 500k iterations)
    seed: int = 0
    neural_rendering_resolution: int = 32  # raw render size while training (pixels)
    truncation_psi: float = 0.7
    yaw_std: float = 0.3  # radians; FFHQ-like prior (StyleSDF's)
    pitch_std: float = 0.15
    yaw_max: float = 0.7
    pitch_max: float = 0.3
    num_surface_points: int = 512  # per sample
    num_near_points: int = 512
    near_std: float = 0.02  # world units
    render_with_predicted_pose: bool = (
        False  # Sec. 4.4: reconstruct at the pose head's camera (costs a 2nd render for depth)
    )
    weights: Stage1LossWeights = field(default_factory=Stage1LossWeights)
    lpips: str = "alex"  # 'alex' | 'vgg' | 'off'; needs real weights, else off with a warning
    identity: str = "arcface"  # 'arcface' | 'off'; needs model_ir_se50.pth, else off with a warning
    real_data: str | None = None  # PREIM3D alternation: a folder of aligned images, or 'toy-photos'
    real_every: int = 2  # every k-th step is a real (unlabelled) batch when real_data is set
    multiview_yaw: float = 0.35  # radians: nearby views for the multi-view ID loss are drawn within this
    e4e_progressive_every: int = 0  # e4e: steps between unlocking W+ rows (0 = all rows from the start)
    checkpoint_every: int = 50  # steps
    sample_every: int = 100  # steps; sample grids in out_dir/samples
    tensorboard: bool = False  # also log to TensorBoard (needs the tensorboard package)
    threads: int = 0  # torch CPU threads (0 = leave torch's default)
    mixed_precision: str = "no"  # accelerate: 'no' | 'bf16' | 'fp16'

    def __post_init__(self) -> None:
        if isinstance(self.weights, dict):
            check_keys(self.weights, [f.name for f in fields(Stage1LossWeights)], what="loss weight")
            self.weights = Stage1LossWeights(**self.weights)
        check_dataclass_values(self, STAGE1_RANGES)
        check_dataclass_values(self.weights, {f.name: (0.0, 1e6) for f in fields(Stage1LossWeights)}, prefix="weights.")
        if self.encoder not in ENCODER_SIZES:
            raise OptionError(f"encoder must be one of {ENCODER_SIZES}, got {self.encoder!r}")
        if self.method not in METHODS:
            raise OptionError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.lpips not in ("alex", "vgg", "off") or self.identity not in ("arcface", "off"):
            raise OptionError(
                f"lpips must be 'alex'|'vgg'|'off' and identity 'arcface'|'off', got {self.lpips!r}, {self.identity!r}"
            )
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise OptionError(f"mixed_precision must be 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")

    def effective_weights(self) -> Stage1LossWeights:
        """The loss weights after the method's switches (baselines turn the 3D terms off)."""
        w = self.weights
        if self.method == "psp2d":
            return replace(
                w,
                geo_surface_density=0.0,
                geo_surface_depth=0.0,
                geo_near_density=0.0,
                code=0.0,
                pose=0.0,
                delta_reg=0.0,
            )
        if self.method == "e4e":
            return replace(
                w,
                geo_surface_density=0.0,
                geo_surface_depth=0.0,
                geo_near_density=0.0,
                code=0.0,
                pose=0.0,
                delta_reg=w.delta_reg or 2e-4,
            )
        return w

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


STAGE1_RANGES: dict[str, tuple[float, float]] = {
    "steps": (1, 10**8),
    "batch_size": (1, 4096),
    "lr": (0.0, 1.0),
    "seed": (0, 2**31 - 1),
    "neural_rendering_resolution": (8, 512),
    "truncation_psi": (0.0, 2.0),
    "yaw_std": (0.0, 3.2),
    "pitch_std": (0.0, 3.2),
    "yaw_max": (0.0, 3.2),
    "pitch_max": (0.0, 1.6),
    "num_surface_points": (1, 10**6),
    "num_near_points": (1, 10**6),
    "near_std": (0.0, 1.0),
    "real_every": (1, 10**6),
    "multiview_yaw": (0.0, 3.2),
    "e4e_progressive_every": (0, 10**8),
    "checkpoint_every": (1, 10**8),
    "sample_every": (1, 10**8),
    "threads": (0, 1024),
}
"""Accepted ranges of Stage I's numeric options (inclusive)."""


def check_dataclass_values(obj: Any, ranges: dict[str, tuple[float, float]], prefix: str = "") -> None:
    """Check each field's type against its annotation (bool/int/float/str) and numeric fields against ``ranges``."""
    for f in fields(obj):
        value, kind = getattr(obj, f.name), str(f.type)
        name = prefix + f.name
        if kind == "bool" and not isinstance(value, bool):
            raise OptionError(f"{name} must be true or false, got {value!r}")
        if kind == "str" and not isinstance(value, str):
            raise OptionError(f"{name} must be a string, got {value!r}")
        if kind == "str | None" and value is not None and not isinstance(value, str):
            raise OptionError(f"{name} must be a string or null, got {value!r}")
        if kind in ("int", "float"):
            lo, hi = ranges.get(f.name, (None, None))
            check_range(name, value, lo, hi, integer=kind == "int")


_TINY_TEST: dict[str, Any] = dict(
    generator="tiny-random",
    encoder="tiny",
    steps=4,
    batch_size=2,
    lr=1e-3,
    neural_rendering_resolution=16,
    num_surface_points=64,
    num_near_points=64,
    lpips="off",
    identity="off",
    checkpoint_every=2,
    sample_every=2,
)

STAGE1_PRESETS: dict[str, dict[str, Any]] = {
    # Toy lab on a 2-core CPU: about 10 minutes.
    # EG3D's raw densities at the surface are O(10), so the density terms are scaled down to the
    # image terms' size; the depth term (world units, O(0.01)) is scaled up.
    "toy": dict(
        generator="toy",
        encoder="tiny",
        steps=600,
        batch_size=8,
        lr=5e-4,
        neural_rendering_resolution=32,
        lpips="off",
        identity="off",
        weights=dict(code=1.0, geo_surface_density=0.02, geo_near_density=0.004, geo_surface_depth=10.0, pose=1.0),
    ),
    # Tests: a random tiny EG3D, a handful of steps.
    "tiny-test": _TINY_TEST,
    # Tests: a random tiny StyleSDF (its E0 predicts no pose: the bundle's volume discriminator does). SDF values near
    # the surface are O(0.01-0.1) and depth errors on the unit sphere O(0.001-0.01), so both are scaled up to the code term's size.
    "tiny-test-stylesdf": {
        **_TINY_TEST,
        "generator": "tiny-random-stylesdf",
        "neural_rendering_resolution": 8,
        "weights": dict(code=1.0, pose=0.0, geo_surface_density=10.0, geo_near_density=2.0, geo_surface_depth=100.0),
    },
    # The released FFHQ StyleSDF (``e3dge convert stylesdf`` -> models/e3dge-stylesdf): the official E0 layout from scratch on
    # its 64^2 volume renders and 1024^2 images, the paper's losses (batch 8 per GPU; the paper: 24, lr 5e-5, 500k steps).
    "stylesdf": dict(
        out_dir="outputs/stage1-stylesdf",
        generator="models/e3dge-stylesdf/generator",
        encoder="ir_se50",
        steps=20000,
        batch_size=8,
        lr=5e-5,
        neural_rendering_resolution=64,
        lpips="alex",
        identity="arcface",
        num_surface_points=2048,
        num_near_points=2048,
        checkpoint_every=500,
        sample_every=500,
        mixed_precision="bf16",
        weights=dict(pose=0.0, geo_surface_density=10.0, geo_near_density=2.0, geo_surface_depth=100.0),
    ),
    # FFHQ EG3D, about one GPU-hour on an H100: IR-SE50 E0 from scratch, 64^2 neural renders, the paper's losses.
    "ffhq-eg3d": dict(
        out_dir="outputs/stage1-ffhq-eg3d",
        generator="eg3d-ffhqrebalanced512-128",
        encoder="ir_se50",
        steps=4000,
        batch_size=8,
        lr=1e-4,
        neural_rendering_resolution=64,
        render_with_predicted_pose=True,
        lpips="alex",
        identity="arcface",
        num_surface_points=2048,
        num_near_points=2048,
        checkpoint_every=250,
        sample_every=250,
        mixed_precision="bf16",
    ),
}


def load_stage1_config(spec: str, overrides: dict[str, Any] | None = None) -> Stage1Config:
    """A preset name (see :data:`STAGE1_PRESETS`) or a ``.json`` / ``.yaml`` file, then ``overrides`` on top.

    Overrides may name loss weights as ``weights.<name>`` (e.g. ``weights.geo_surface_depth=0``).
    """
    where = ""
    if spec in STAGE1_PRESETS:
        values: dict[str, Any] = json.loads(json.dumps(STAGE1_PRESETS[spec]))  # a deep copy
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"--config {spec!r} is neither a preset ({', '.join(STAGE1_PRESETS)}) nor a file")
        where = str(path)
        values = _read_mapping(path)
        if "preset" in values:
            preset = values.pop("preset")
            if preset not in STAGE1_PRESETS:
                check_keys([str(preset)], STAGE1_PRESETS, what="preset", where=where)
            base = json.loads(json.dumps(STAGE1_PRESETS[preset]))
            file_weights = values.pop("weights", None) or {}
            if not isinstance(file_weights, dict):
                raise OptionError(f"{where}: weights must be a mapping of loss name -> weight, got {file_weights!r}")
            values = {**base, **values, "weights": {**base.pop("weights", {}), **file_weights}}
    weights = values.pop("weights", {}) or {}
    if not isinstance(weights, dict):
        raise OptionError(f"{where or spec}: weights must be a mapping of loss name -> weight, got {weights!r}")
    for key, value in (overrides or {}).items():
        if key.startswith("weights."):
            weights[key.split(".", 1)[1]] = value
        else:
            values[key] = value
    check_keys(values, [f.name for f in fields(Stage1Config)], what="Stage I option", where=where)
    check_keys(weights, [f.name for f in fields(Stage1LossWeights)], what="loss weight", where=where)
    try:
        return Stage1Config(**values, weights=Stage1LossWeights(**weights))
    except OptionError as err:
        raise OptionError(f"{where}: {err}" if where else str(err)) from None


def _read_mapping(path: Path) -> dict[str, Any]:
    """A JSON or YAML file holding one mapping; anything else is a one-line error naming the file."""
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except UnicodeDecodeError:
        raise OptionError(f"{path}: not a text file; a config is JSON or YAML") from None
    except json.JSONDecodeError as err:
        raise OptionError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except RecursionError:
        raise OptionError(f"{path}: nested too deeply to be a config (a config is a flat mapping of options)") from None
    except Exception as err:  # yaml.YAMLError and friends
        if type(err).__module__.startswith("yaml"):
            raise OptionError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        raise
    if not isinstance(values, dict):
        raise OptionError(f"{path}: a config file must hold a mapping of option -> value, got {type(values).__name__}")
    return values
