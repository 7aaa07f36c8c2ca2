"""Build a random description (spec dict) as a PyTorch module, with a gradient oracle.

Every spec node becomes a submodule named after it (so its module path is the node name),
with 2 channels, float64, positive weights. ``probe=True`` swaps max pooling for a sum over the
same window (same kernel, stride, dilation, padding, ceil-mode output shape), so every input a
pool reads gets gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = 2


def _torch_pad(pads: list[list[int]]) -> list[int]:
    """Per-axis [before, after] -> F.pad's order (last axis first)."""
    out: list[int] = []
    for b, a in reversed(pads):
        out += [b, a]
    return out


def _pads(node: dict, ndim: int) -> list[list[int]]:
    v = node.get("pad", 0)
    v = v if isinstance(v, list) else [v] * ndim
    return [list(p) if isinstance(p, list) else [p, p] for p in v]


def _per_axis(node: dict, key: str, ndim: int, default: int) -> list[int]:
    v = node.get(key, default)
    return list(v) if isinstance(v, list) else [v] * ndim


class Op(nn.Module):
    """One spec node: a function of its inputs plus the layers it owns."""

    def __init__(self, fn: Callable, **layers: nn.Module):
        super().__init__()
        self.fn = fn
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(self, *xs)


class SpecNet(nn.Module):
    def __init__(self, desc: dict, probe: bool = False):
        super().__init__()
        self.order = [(n["name"], n["inputs"]) for n in desc["nodes"]]
        ndim = len(desc["input"])
        for node in desc["nodes"]:
            self.add_module(node["name"], _make(node, ndim, probe))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {"input": x}
        for name, inputs in self.order:
            values[name] = getattr(self, name)(*[values[i] for i in inputs])
        return values[self.order[-1][0]]


def _conv_cls(ndim: int, transposed: bool = False) -> type:
    return getattr(nn, f"Conv{'Transpose' if transposed else ''}{ndim}d")


def _make(node: dict, ndim: int, probe: bool) -> nn.Module:
    op = node["op"]
    C = CHANNELS
    if op == "conv":
        k = _per_axis(node, "kernel", ndim, 1)
        s = _per_axis(node, "stride", ndim, 1)
        d = _per_axis(node, "dilation", ndim, 1)
        pads = _pads(node, ndim)
        if all(b == a for b, a in pads):
            conv = _conv_cls(ndim)(C, C, k, s, [b for b, _ in pads], d)
            return Op(lambda m, x: m.conv(x), conv=conv)
        conv = _conv_cls(ndim)(C, C, k, s, 0, d)
        return Op(lambda m, x: m.conv(F.pad(x, _torch_pad(pads))), conv=conv)
    if op == "pool":
        k = _per_axis(node, "kernel", ndim, 1)
        s = _per_axis(node, "stride", ndim, 1)
        d = _per_axis(node, "dilation", ndim, 1)
        p = [b for b, _ in _pads(node, ndim)]
        ceil = node.get("ceil_mode", False)
        pool = getattr(nn, f"MaxPool{ndim}d")(k, s, p, d, ceil_mode=ceil)
        if not probe:
            return Op(lambda m, x: m.pool(x), pool=pool)
        ones = torch.ones((C, 1, *k), dtype=torch.float64)

        def sum_pool(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
            shape = m.pool(x).shape  # the real output shape (ceil_mode included)
            extra = [max(0, (n - 1) * ss + dd * (kk - 1) + 1 - (size + 2 * pp))
                     for n, ss, dd, kk, size, pp in zip(shape[2:], s, d, k, x.shape[2:], p)]
            xp = F.pad(x, _torch_pad([[pp, pp + e] for pp, e in zip(p, extra)]))
            conv = getattr(F, f"conv{ndim}d")
            y = conv(xp, ones.to(x.dtype), stride=s, dilation=d, groups=C)
            return y[(slice(None), slice(None), *[slice(0, n) for n in shape[2:]])]
        return Op(sum_pool, pool=pool)
    if op == "pad":
        mode = node.get("mode", "constant")
        pads = _torch_pad(_pads(node, ndim))
        return Op(lambda m, x: F.pad(x, pads, mode=mode))
    if op == "pointwise":
        return Op(lambda m, x: torch.sigmoid(x))
    if op in ("add", "mul"):
        return Op(lambda m, x, y: x + y if op == "add" else x * y)
    if op == "concat":
        axis = node.get("axis", "channel")
        if axis == "channel":
            mix = _conv_cls(ndim)(2 * C, C, 1)
            return Op(lambda m, *xs: m.mix(torch.cat(xs, dim=1)), mix=mix)
        return Op(lambda m, *xs: torch.cat(xs, dim=2 + axis))
    if op == "conv_transpose":
        k = _per_axis(node, "kernel", ndim, 1)
        s = _per_axis(node, "stride", ndim, 1)
        d = _per_axis(node, "dilation", ndim, 1)
        p = [b for b, _ in _pads(node, ndim)]
        outpad = _per_axis(node, "output_padding", ndim, 0)
        conv = _conv_cls(ndim, True)(C, C, k, s, p, outpad, dilation=d)
        return Op(lambda m, x: m.conv(x), conv=conv)
    if op == "upsample":
        mode = node.get("mode", "nearest")
        size = node["size"]
        kwargs = {"align_corners": node.get("align_corners", False)} \
            if mode in ("linear", "bilinear") else {}
        return Op(lambda m, x: F.interpolate(x, size=size, mode=mode, **kwargs))
    if op == "pixel_shuffle":
        f = node.get("factor", 2)
        expand = _conv_cls(ndim)(C, C * f * f, 1)
        return Op(lambda m, x: F.pixel_shuffle(m.expand(x), f), expand=expand)
    if op == "slice":
        start = _per_axis(node, "start", ndim, 0)
        step = _per_axis(node, "step", ndim, 1)
        idx = (slice(None), slice(None), *[slice(b, None, st) for b, st in zip(start, step)])
        return Op(lambda m, x: x[idx])
    raise ValueError(f"fuzz: no PyTorch builder for op {op!r}")


def _positive(model: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) * 0.9 + 0.1)
    return model


def build(desc: dict, seed: int = 0):
    """(model, input shape, oracle, analyze options); the oracle returns (lo, hi) boxes of the
    output's gradient support, shape (D, *out_spatial), empty positions with lo > hi."""
    shape = (1, CHANNELS, *desc["input"])
    model = _positive(SpecNet(desc).double(), seed).eval()

    def oracle() -> tuple[np.ndarray, np.ndarray]:
        probe = _positive(SpecNet(desc, probe=True).double(), seed).eval()
        probe.load_state_dict(model.state_dict())
        return support_boxes(probe, shape)
    return model, shape, oracle, {}


def support_boxes(model: nn.Module, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes of nonzero input gradient of every output position (channels summed)."""
    x = (torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
         + 0.5).requires_grad_(True)
    y = model(x)
    out_spatial = y.shape[2:]
    n_out = int(np.prod(out_spatial))
    eye = torch.eye(n_out, dtype=y.dtype).reshape(n_out, 1, 1, *out_spatial)
    cot = eye.expand(n_out, *y.shape).contiguous()
    (g,) = torch.autograd.grad(y, x, cot, is_grads_batched=True)
    mask = (g.abs().sum(dim=(1, 2)) > 0).numpy()  # (n_out, *in_spatial)
    D = len(shape) - 2
    lo = np.ones((D, n_out), dtype=np.int64)
    hi = np.zeros((D, n_out), dtype=np.int64)
    for o in range(n_out):
        nz = np.argwhere(mask[o])
        if len(nz):
            lo[:, o], hi[:, o] = nz.min(axis=0), nz.max(axis=0)
    return lo.reshape(D, *out_spatial), hi.reshape(D, *out_spatial)
