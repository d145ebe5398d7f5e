"""Checkpoint folders (``config.json`` + ``model.safetensors``) on disk or on the Hugging Face Hub.

Hub files go through ``huggingface_hub`` (its cache, revisions and ``HF_HUB_OFFLINE=1`` offline
mode). Weights are safetensors only: loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "PretrainedSource", "PretrainedMixin", "resolve_file", "CheckpointNotFoundError"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

T = TypeVar("T", bound="PretrainedMixin")


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint could not be found locally, in the Hub cache, or on the Hub."""


@dataclass(frozen=True)
class PretrainedSource:
    """Where a known checkpoint lives on the Hub."""

    repo_id: str
    filename: str
    revision: str | None = None
    description: str = ""


def resolve_file(
    repo_id_or_path: str | os.PathLike,
    filename: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Local path of ``filename`` inside a folder, or downloaded (and cached) from a Hub repo."""
    folder = Path(repo_id_or_path)
    if folder.is_dir():
        path = folder / filename
        if not path.is_file():
            raise CheckpointNotFoundError(f"{folder} has no {filename}; a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
        return path
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(
            hf_hub_download(
                str(repo_id_or_path),
                filename,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=bool(local_files_only),
            )
        )
    except LocalEntryNotFoundError as err:
        raise CheckpointNotFoundError(
            f"{filename} of {repo_id_or_path!s} is not in the local Hub cache and the Hub cannot be reached "
            "(offline mode or no network). Download it once with network access, or pass a local folder."
        ) from err
    except (RepositoryNotFoundError, EntryNotFoundError) as err:
        raise CheckpointNotFoundError(f"{repo_id_or_path!s}: no such Hub repo or file {filename!r} ({err.__class__.__name__})") from err


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to a module whose ``config`` dict is its constructor kwargs."""

    config: dict[str, Any]

    def save_pretrained(self, save_directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (all persistent parameters and buffers).

        ``dtype`` (e.g. ``torch.float16``) stores the floating parameters in that type to halve the file;
        buffers (statistics such as a mean latent) stay exact. ``from_pretrained`` casts back on load.
        """
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": type(self).__name__, **self.config}
        tmp = out / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
        tmp.replace(out / CONFIG_NAME)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        if dtype is not None:
            params = {name for name, _ in self.named_parameters()}  # type: ignore[attr-defined]
            state = {k: v.to(dtype) if k in params and v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(out / (WEIGHTS_NAME + ".tmp")), metadata={"format": "pt", "class": type(self).__name__})
        (out / (WEIGHTS_NAME + ".tmp")).replace(out / WEIGHTS_NAME)
        return out

    @classmethod
    def from_pretrained(
        cls: type[T],
        name_or_path: str | os.PathLike,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        device: str | torch.device = "cpu",
    ) -> T:
        """Build the model from its config and load its weights strictly; returned in eval mode."""
        kw = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        config_path = resolve_file(name_or_path, CONFIG_NAME, **kw)
        config = json.loads(Path(config_path).read_text())
        class_name = config.pop("_class_name", cls.__name__)
        if class_name != cls.__name__:
            raise ValueError(f"{name_or_path!s} holds a {class_name}, not a {cls.__name__}")
        weights_path = resolve_file(name_or_path, WEIGHTS_NAME, **kw)
        model = cls(**config)
        model.load_state_dict(load_file(str(weights_path)), strict=True)  # type: ignore[attr-defined]
        return model.eval().to(device)  # type: ignore[attr-defined]
