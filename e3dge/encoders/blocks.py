"""Small blocks shared by the Stage II modules: a fully connected ResNet block and the positional encoding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.backbones.ops import apply_film

__all__ = ["ResnetBlockFC", "positional_encoding", "pe_dim", "apply_film"]


class ResnetBlockFC(nn.Module):
    """``shortcut(x) + fc_1(relu(fc_0(relu(x))))``; hidden width min(in, out), bias-free shortcut (official names)."""

    def __init__(self, size_in: int, size_out: int, size_h: int | None = None) -> None:
        super().__init__()
        size_h = min(size_in, size_out) if size_h is None else size_h
        self.fc_0 = nn.Linear(size_in, size_h)
        self.fc_1 = nn.Linear(size_h, size_out)
        self.shortcut = nn.Linear(size_in, size_out, bias=False) if size_in != size_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., size_in] -> [..., size_out]``.

        The shortcut carries fc_1's bias and fc_1 accumulates onto it (one ``addmm``), so the widest tensors of the
        local branch are written once; the in-place ReLU is safe under autograd (its backward reads its output).
        """
        h = self.fc_0(torch.relu(x)).relu_()
        bias = self.fc_1.bias.to(h.dtype)
        base = F.linear(x, self.shortcut.weight, bias) if self.shortcut is not None else x + bias
        out = torch.addmm(
            base.reshape(-1, base.shape[-1]), h.reshape(-1, h.shape[-1]), self.fc_1.weight.t().to(h.dtype)
        )
        return out.view(*x.shape[:-1], out.shape[-1])


def positional_encoding(x: torch.Tensor, num_frequencies: int = 7) -> torch.Tensor:
    """``[x, sin(2^k x), cos(2^k x)]`` for k = 0..num_frequencies-1 (3-D points -> 45 values with 7 frequencies)."""
    parts = [x]
    for k in range(num_frequencies):
        parts += [torch.sin(x * 2.0**k), torch.cos(x * 2.0**k)]
    return torch.cat(parts, -1)


def pe_dim(num_frequencies: int = 7, dims: int = 3) -> int:
    """Width of :func:`positional_encoding` of ``dims``-D points."""
    return dims * (1 + 2 * num_frequencies)
