"""Write NVIDIA-persistence-format pickles for tests, without NVIDIA code.

Each network module becomes a record reduced to ``torch_utils.persistence._reconstruct_persistent_obj(meta)``
with ``meta = {type, version, module_src, class_name, state}`` as official snapshots store them. The fake
``_reconstruct_persistent_obj`` and the ``module_src`` both write a marker file if ever executed, so a
test can prove that loading executed nothing.
"""

from __future__ import annotations

import collections
import pickle
import sys
import types
from pathlib import Path

import numpy as np
from torch import nn


def _install_fake_nvidia_modules(marker: Path) -> types.ModuleType:
    """Register ``torch_utils.persistence`` and ``dnnlib.util`` so pickle can name their globals."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # must never run when e3dge loads the file
        marker.write_text("executed _reconstruct_persistent_obj")
        raise RuntimeError("executed")

    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    util.EasyDict = EasyDict
    sys.modules.update(
        {
            "torch_utils": types.ModuleType("torch_utils"),
            "torch_utils.persistence": persistence,
            "dnnlib": types.ModuleType("dnnlib"),
            "dnnlib.util": util,
        }
    )
    return persistence


class _Record:
    def __init__(self, reconstruct, meta):
        self._reconstruct, self._meta = reconstruct, meta

    def __reduce__(self):
        return self._reconstruct, (self._meta,)


def _to_record(module: nn.Module, reconstruct, module_src: str, EasyDict, top_state: dict | None = None):
    if isinstance(module, (nn.Sequential, nn.Softplus)):  # plain torch modules are pickled as themselves
        plain = type(module)()
        plain._modules = collections.OrderedDict(
            (k, _to_record(v, reconstruct, module_src, EasyDict)) for k, v in module._modules.items()
        )
        return plain
    persistent = set(module.state_dict(keep_vars=True).keys())
    buffers = collections.OrderedDict((k, v) for k, v in module._buffers.items() if k in persistent)
    state = {
        "training": False,
        "_parameters": collections.OrderedDict(module._parameters),
        "_buffers": buffers,
        "_non_persistent_buffers_set": set(),
        "_modules": collections.OrderedDict(
            (k, _to_record(v, reconstruct, module_src, EasyDict)) for k, v in module._modules.items()
        ),
        "_init_args": (),
        "_init_kwargs": EasyDict(),
    }
    if hasattr(module, "weight_gain"):
        state["weight_gain"] = np.float64(module.weight_gain)  # official gains are numpy scalars
    state.update(top_state or {})
    name = type(module).__name__
    meta = {
        "type": "class",
        "version": 6,
        "module_src": module_src,
        "class_name": name,  # persistence stores the bare class name (its module is in module_src)
        "state": state,
    }
    return _Record(reconstruct, meta)


def write_official_snapshot(G, path: Path, marker: Path, G_training=None) -> Path:
    """Pickle ``G`` (an e3dge TriPlaneGenerator) as an official snapshot ``{G, D, G_ema, ...}``.

    ``G_training`` (default: ``G``) is written as ``G``; ``G`` itself goes to ``G_ema``.
    """
    persistence = _install_fake_nvidia_modules(marker)
    EasyDict = sys.modules["dnnlib.util"].EasyDict
    module_src = f"open({str(marker)!r}, 'w').write('executed module_src')\n"
    init_kwargs = {k: v for k, v in G.config.items() if k != "neural_rendering_resolution"}
    init_kwargs["mapping_kwargs"] = EasyDict(init_kwargs["mapping_kwargs"])
    init_kwargs["sr_kwargs"] = EasyDict(init_kwargs["sr_kwargs"])

    def top(model):
        return {
            "_init_kwargs": EasyDict(init_kwargs),
            "rendering_kwargs": dict(model.rendering_kwargs),
            "neural_rendering_resolution": model.neural_rendering_resolution,
            "z_dim": model.z_dim,
            "c_dim": model.c_dim,
        }

    snapshot = {
        "training_set_kwargs": EasyDict(resolution=G.img_resolution),
        "G": _to_record(
            G_training or G, persistence._reconstruct_persistent_obj, module_src, EasyDict, top(G_training or G)
        ),
        "D": None,
        "G_ema": _to_record(G, persistence._reconstruct_persistent_obj, module_src, EasyDict, top(G)),
        "augment_pipe": None,
    }
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)
    for name in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"):
        sys.modules.pop(name, None)
    return path
