"""Small torch models for the erf tests, each with its layer spec written by hand.

Spec node names are the modules' paths in the ``nn.Sequential`` ("0", "1", ...), so the torch
backend finds each end-point by forward hook exactly as it does with a frontend's graph.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from analytic.spec import load_spec


def box_power(k: int, n: int) -> np.ndarray:
    """The n-fold self-convolution of a length-k box (DESIGN.md §7), by np.convolve."""
    out = np.ones(1)
    for _ in range(n):
        out = np.convolve(out, np.ones(k))
    return out


def chain(input_shape, layers) -> dict:
    """A spec dict of a chain; ``layers`` are (op, fields) named "0", "1", ..."""
    nodes = []
    for i, (op, fields) in enumerate(layers):
        nodes.append({"name": str(i), "op": op, "inputs": ["input" if i == 0 else str(i - 1)],
                      **fields})
    return {"input": list(input_shape), "nodes": nodes}


def conv_stack(n: int, k: int, ndim: int = 2, channels: int = 1, size: int = 15,
               relu: bool = False):
    """n stride-1 'same' convolutions of kernel k without bias; (model, graph)."""
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[ndim]
    layers, spec = [], []
    for _ in range(n):
        layers.append(conv(channels, channels, k, padding=k // 2, bias=False))
        spec.append(("conv", {"kernel": k, "pad": k // 2}))
        if relu:
            layers.append(nn.ReLU())
            spec.append(("pointwise", {}))
    return nn.Sequential(*layers), load_spec(chain([size] * ndim, spec))


def mixed_net(dtype=torch.float64, seed: int = 0):
    """Stride, dilation, ReLU and max pooling on 17x17, two input channels; (model, graph)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 3, 3, dilation=2, padding=2), nn.MaxPool2d(3, 1, 1))
    graph = load_spec(chain([17, 17], [
        ("conv", {"kernel": 3, "stride": 2, "pad": 1}), ("pointwise", {}),
        ("conv", {"kernel": 3, "dilation": 2, "pad": 2}),
        ("pool", {"kernel": 3, "stride": 1, "pad": 1})]))
    return model.to(dtype), graph


class Blowup(nn.Module):
    """Identity, except that the gradient at one position overflows to inf (float32) where the
    incoming gradient there is nonzero: x + (x * m) * m with m = 1e30 at that position, 0
    elsewhere (the backward multiplies by m twice: 1e60 overflows; 0 stays 0). In float64,
    use scale=1e200 and dtype=torch.float64."""

    def __init__(self, shape, position, scale=1e30, dtype=torch.float32):
        super().__init__()
        m = torch.zeros(shape, dtype=dtype)
        m[(..., *position)] = scale
        self.register_buffer("m", m)

    def forward(self, x):
        return x + (x * self.m) * self.m


class ResidualUp(nn.Module):
    """A residual block, a strided conv, bilinear upsampling, transposed conv, a channel concat
    with the input and reflection padding: merges and non-window index maps on 12x12."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 2, 3, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)
        self.down = nn.Conv2d(2, 3, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.tconv = nn.ConvTranspose2d(3, 2, 2, stride=2)
        self.pad = nn.ReflectionPad2d(1)
        self.head = nn.Conv2d(7, 1, 3)

    def forward(self, x):
        r = x + self.b(torch.relu(self.a(x)))
        d = torch.tanh(self.down(r))
        return self.head(self.pad(torch.cat([x, self.up(d), self.tconv(d)], dim=1)))


def residual_up_graph():
    return load_spec({"input": [12, 12], "nodes": [
        {"name": "a", "op": "conv", "inputs": ["input"], "kernel": 3, "pad": 1},
        {"name": "relu", "op": "pointwise", "inputs": ["a"]},
        {"name": "b", "op": "conv", "inputs": ["relu"], "kernel": 3, "pad": 1},
        {"name": "add", "op": "add", "inputs": ["input", "b"]},
        {"name": "down", "op": "conv", "inputs": ["add"], "kernel": 3, "stride": 2, "pad": 1},
        {"name": "tanh", "op": "pointwise", "inputs": ["down"]},
        {"name": "up", "op": "upsample", "inputs": ["tanh"], "mode": "bilinear", "scale": 2},
        {"name": "tconv", "op": "conv_transpose", "inputs": ["tanh"], "kernel": 2,
         "stride": 2},
        {"name": "cat", "op": "concat", "inputs": ["input", "up", "tconv"]},
        {"name": "pad", "op": "pad", "inputs": ["cat"], "pad": 1, "mode": "reflect"},
        {"name": "head", "op": "conv", "inputs": ["pad"], "kernel": 3}]})


def pooling_net():
    """Max pooling with ceil_mode and average pooling with padding on 13x21; (model, graph)."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, 2, ceil_mode=True), nn.ReLU(),
                          nn.AvgPool2d(3, 2, padding=1), nn.Conv2d(2, 1, (1, 3), dilation=2))
    graph = load_spec(chain([13, 21], [
        ("conv", {"kernel": 3}), ("pool", {"kernel": 2, "stride": 2, "ceil_mode": True}),
        ("pointwise", {}), ("pool", {"kernel": 3, "stride": 2, "pad": 1}),
        ("conv", {"kernel": [1, 3], "dilation": 2})]))
    return model, graph
