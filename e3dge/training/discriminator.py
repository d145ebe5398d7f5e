"""A StyleGAN2-style residual discriminator and its losses, for Stage 2.2's adversarial term.

Shape of StyleGAN2's ``resnet`` D (Karras et al. 2020): fromRGB (1x1), residual blocks that halve the
resolution (two 3x3 convs + a 1x1 skip, summed and scaled by 1/sqrt(2)), minibatch standard
deviation at 4x4, a 3x3 conv and two linear layers to one logit. Simplifications, stated: plain
PyTorch layers with default initialisation instead of equalised learning rate, and average pooling
instead of the FIR-filtered downsampling. Losses are the ones E3DGE uses: the
non-saturating logistic loss and the R1 penalty on real images, applied lazily.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Discriminator", "d_logistic_loss", "g_nonsaturating_loss", "r1_penalty"]


class _Block(nn.Module):
    """Two 3x3 convs + a 1x1 skip, then halve the resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv0(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv1(y), 0.2), 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class Discriminator(nn.Module):
    """Images ``[N, 3, R, R]`` in [-1, 1] (R a power of two >= 4) -> logits ``[N]``."""

    def __init__(self, resolution: int, width: int = 32, max_width: int = 256, mbstd_group: int = 4) -> None:
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"discriminator resolution must be a power of two >= 4, got {resolution}")
        self.resolution, self.mbstd_group = resolution, mbstd_group
        widths = [min(width * 2**i, max_width) for i in range(int(math.log2(resolution)) - 1)]  # at R, R/2, ..., 4
        self.from_rgb = nn.Conv2d(3, widths[0], 1)
        self.blocks = nn.ModuleList(_Block(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.conv = nn.Conv2d(widths[-1] + 1, widths[-1], 3, padding=1)
        self.fc = nn.Linear(widths[-1] * 16, widths[-1])
        self.out = nn.Linear(widths[-1], 1)

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        """Append the mean standard deviation over groups of samples as one more channel (StyleGAN2's mbstd)."""
        n, c, h, w = x.shape
        g = min(self.mbstd_group, n)
        while n % g:
            g -= 1
        y = x.reshape(g, n // g, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [n // g]
        y = y.reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.resolution:
            images = F.interpolate(
                images, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False, antialias=True
            )
        x = F.leaky_relu(self.from_rgb(images), 0.2)
        for block in self.blocks:
            x = block(x)
        x = F.leaky_relu(self.conv(self.minibatch_std(x)), 0.2)
        return self.out(F.leaky_relu(self.fc(x.flatten(1)), 0.2)).squeeze(1)


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's side of the non-saturating GAN loss: ``softplus(D(fake)) + softplus(-D(real))``."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's (here: the local branch's) side: ``softplus(-D(fake))``."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(D: Discriminator, real: torch.Tensor) -> torch.Tensor:
    """``mean ||dD(real)/d real||^2`` (multiply by gamma / 2, and by the lazy interval when applied every k steps)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()
