"""Luo et al. 2016 ("Understanding the Effective Receptive Field in Deep CNNs") stacks.

``conv_stack(n, ...)``: n convolutions of kernel k, 'same' zero padding, optional
nonlinearity, subsampling (stride 2 every ``subsample_every`` layers), dilation, and residual
skips around pairs of layers. ``weights="uniform"`` sets every weight to 1/(k*k*C) (the paper's
uniform case: the ERF is the n-fold self-convolution of a box); ``"random"`` draws i.i.d.
N(0, 1/(k*k*C)) weights (variance-preserving) with a seed.
"""

from __future__ import annotations

import torch
from torch import nn

NONLINEARITIES = {"none": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def conv_stack(n: int, kernel: int = 3, channels: int = 1, weights: str = "uniform",
               nonlinearity: str = "none", subsample_every: int = 0, dilation: int = 1,
               skip: bool = False, seed: int = 0) -> nn.Sequential:
    """A plain stack of ``n`` k x k convolutions (see the module docstring)."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity {nonlinearity!r}: use one of {sorted(NONLINEARITIES)}")
    if weights not in ("uniform", "random"):
        raise ValueError(f"weights {weights!r}: use 'uniform' or 'random'")
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    fan_in = kernel * kernel * channels
    for i in range(n):
        stride = 2 if subsample_every and (i + 1) % subsample_every == 0 else 1
        conv = nn.Conv2d(channels, channels, kernel, stride=stride, dilation=dilation,
                         padding=dilation * (kernel // 2), bias=False)
        with torch.no_grad():
            if weights == "uniform":
                conv.weight.fill_(1.0 / fan_in)
            else:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) / fan_in ** 0.5)
        block: nn.Module = nn.Sequential(conv, NONLINEARITIES[nonlinearity]())
        layers.append(Residual(block) if skip and stride == 1 else block)
    return nn.Sequential(*layers)
