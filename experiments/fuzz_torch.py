"""Build a random description (spec dict) as a PyTorch module, with a gradient oracle.

Every spec node becomes a submodule named after it (so its module path is the node name),
with 2 channels, float64, positive weights, and values that stay positive, so no gradient can
cancel or vanish: the pointwise op is ``x + tanh(x)`` (slope in [1, 2]; a sigmoid saturates to
a zero gradient in float64 after a few positive layers). ``probe=True`` swaps max pooling for a
sum over the same window (same kernel, stride, dilation, padding, ceil-mode output shape), so
every input a pool reads gets gradient, and ``mul`` for ``add`` (a factor that is an exact 0,
e.g. read from padding, would zero the gradient of the others).

Variants the spec cannot name are taken from the description's structure, deterministically:
- a conv whose name hashes odd (``zlib.crc32(name) % 2``) is grouped (``groups=2``, depthwise);
- a reflect/replicate/circular ``pad`` node with symmetric amounts whose only user is a conv
  without padding becomes that conv's ``padding=..., padding_mode=...`` (the pad node is then
  not a module of its own: it is reported in ``Built.fused`` and not compared by name).

PyTorch's interpolation kernels compute source positions in floating point; where that differs
from the spec's exact rational definition (a tap with a weight of about 1e-16 where the exact
weight is 0, e.g. linear 2 -> 10 at position 2), the upsample node is reported in
``Built.inexact`` with the positions: there the torch model is not the description, so only the
torch analysis vs the torch gradients is checked downstream of it.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from experiments.fuzz import find_ties, mask_boxes

CHANNELS = 2
CAPTURE = "auto"  # the PyTorch frontend's capture: auto (fast, export as fallback) | export


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
        fused = fused_pads(desc)
        by_name = {n["name"]: n for n in desc["nodes"]}
        for node in desc["nodes"]:
            if node["name"] in fused:
                self.add_module(node["name"], Op(lambda m, x: x))  # applied by its conv
                continue
            pad_mode = None
            if node["inputs"][0] in fused:
                pad_mode = by_name[node["inputs"][0]]
            self.add_module(node["name"], _make(node, ndim, probe, pad_mode))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {"input": x}
        for name, inputs in self.order:
            values[name] = getattr(self, name)(*[values[i] for i in inputs])
        return values[self.order[-1][0]]


def fused_pads(desc: dict) -> set[str]:
    """Pad nodes built as their conv's ``padding_mode`` (see the module doc)."""
    ndim = len(desc["input"])
    users: dict[str, list[dict]] = {}
    for n in desc["nodes"]:
        for i in n["inputs"]:
            users.setdefault(i, []).append(n)
    out = set()
    last = desc["nodes"][-1]["name"]
    for n in desc["nodes"]:
        if n["op"] != "pad" or n.get("mode", "constant") == "constant" or n["name"] == last:
            continue
        pads = _pads(n, ndim)
        u = users.get(n["name"], [])
        if (len(u) == 1 and u[0]["op"] == "conv" and u[0]["inputs"] == [n["name"]]
                and all(b == a >= 0 for b, a in pads)
                and all(b == a == 0 for b, a in _pads(u[0], ndim))):
            out.add(n["name"])
    return out


def groups(node: dict) -> int:
    """Groups of a conv node (see the module doc)."""
    return 2 if zlib.crc32(node["name"].encode()) % 2 else 1


def _conv_cls(ndim: int, transposed: bool = False) -> type:
    return getattr(nn, f"Conv{'Transpose' if transposed else ''}{ndim}d")


def _make(node: dict, ndim: int, probe: bool, pad_node: dict | None = None) -> nn.Module:
    op = node["op"]
    C = CHANNELS
    if op == "conv":
        k = _per_axis(node, "kernel", ndim, 1)
        s = _per_axis(node, "stride", ndim, 1)
        d = _per_axis(node, "dilation", ndim, 1)
        pads = _pads(node, ndim)
        g = groups(node)
        if pad_node is not None:  # the pad node before it, as padding_mode
            p = [b for b, _ in _pads(pad_node, ndim)]
            conv = _conv_cls(ndim)(C, C, k, s, p, d, groups=g, padding_mode=pad_node["mode"])
            return Op(lambda m, x: m.conv(x), conv=conv)
        if all(b == a for b, a in pads):
            conv = _conv_cls(ndim)(C, C, k, s, [b for b, _ in pads], d, groups=g)
            return Op(lambda m, x: m.conv(x), conv=conv)
        conv = _conv_cls(ndim)(C, C, k, s, 0, d, groups=g)
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
        return Op(lambda m, x: x + torch.tanh(x))
    if op == "add":
        return Op(lambda m, *xs: sum(xs[1:], xs[0]))
    if op == "mul" and not probe:
        return Op(lambda m, *xs: torch.prod(torch.stack(xs), dim=0))
    if op == "mul":  # probed as a sum: a factor that is 0 (padding) would hide the others
        return Op(lambda m, *xs: sum(xs[1:], xs[0]))
    if op == "global":
        return Op(lambda m, x: getattr(F, f"adaptive_avg_pool{ndim}d")(x, 1))
    if op == "pixel_unshuffle":
        f = node.get("factor", 2)
        mix = _conv_cls(ndim)(C * f * f, C, 1)
        return Op(lambda m, x: m.mix(F.pixel_unshuffle(x, f)), mix=mix)
    if op == "concat":
        axis = node.get("axis", "channel")
        if axis == "channel":
            mix = _conv_cls(ndim)(len(node["inputs"]) * C, C, 1)
            return Op(lambda m, *xs: m.mix(torch.cat(xs, dim=1)), mix=mix)
        return Op(lambda m, *xs: torch.cat(xs, dim=2 + axis))
    if op == "conv_transpose":
        k = _per_axis(node, "kernel", ndim, 1)
        s = _per_axis(node, "stride", ndim, 1)
        d = _per_axis(node, "dilation", ndim, 1)
        p = [b for b, _ in _pads(node, ndim)]
        outpad = _per_axis(node, "output_padding", ndim, 0)
        conv = _conv_cls(ndim, True)(C, C, k, s, p, outpad, dilation=d, groups=groups(node))
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


@dataclass
class Built:
    """A description built in a framework: the model and what the fuzz needs to check it.

    ``oracle()`` returns (lo, hi) boxes of the output's gradient support, shape
    (D, *out_spatial), empty positions with lo > hi. ``fused``: spec nodes that are not a
    module of their own (compared through their user only). ``inexact``: node -> why the
    framework's forward op differs from the spec's definition there (downstream, the spec is
    not the model). ``grad_inexact``: node -> why the framework's gradient does not follow its
    own forward there (downstream, gradients cannot judge). ``context()``: entered around the
    analysis and the oracle (JAX: float64 via ``jax.enable_x64``). ``composite``: nodes the
    framework writes as several ops whose r, S, P differ by convention from the spec's single
    op (``jnp.pad`` reflect/edge/wrap is slices and a concatenate, a misaligned merge where
    the spec has one padding window): downstream, r, S, P are not compared (regions are).
    ``views``: nodes written as pure views (JAX reshape + transpose); downstream, a node the
    frontend holds in the merged layout (its IR axes are the underlying ones, not the array's)
    is not compared by name; the output and the gradients still are."""

    model: Any
    shape: tuple[int, ...]
    oracle: Callable[[], tuple[np.ndarray, np.ndarray]]
    options: dict = field(default_factory=dict)
    fused: set[str] = field(default_factory=set)
    inexact: dict[str, str] = field(default_factory=dict)
    grad_inexact: dict[str, str] = field(default_factory=dict)
    context: Callable[[], Any] = contextlib.nullcontext
    composite: set[str] = field(default_factory=set)
    views: set[str] = field(default_factory=set)


def build(desc: dict, seed: int = 0) -> Built:
    """The description as a float64 torch module with positive weights, and its oracle. The
    analysis traces it at float64 too (``example_inputs``): interpolation index arithmetic
    runs in the input's precision."""
    shape = (1, CHANNELS, *desc["input"])
    model = _positive(SpecNet(desc).double(), seed).eval()

    def oracle() -> tuple[np.ndarray, np.ndarray]:
        probe = _positive(SpecNet(desc, probe=True).double(), seed).eval()
        probe.load_state_dict(model.state_dict())
        return support_boxes(probe, shape)
    example = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    forward, backward = upsampling_ties(desc)
    return Built(model, shape, oracle, {"example_inputs": example, "capture": CAPTURE},
                 fused_pads(desc), forward, backward)


def upsampling_ties(desc: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Upsample nodes where torch (float64, at the node's real shape) reads other pixels than
    the spec's exact definition (:mod:`analytic.indexmaps`) in its forward, and where its
    gradient lands elsewhere than its forward reads (torch's nearest backward computes source
    indices in float32: nearest-exact 24 -> 37 at position 18 reads pixel 12 forward, sends its
    gradient to pixel 11). First differing position per node."""
    def op(node: dict, ir: Any) -> Callable:
        mode = node.get("mode", "nearest")
        kwargs = {"align_corners": node.get("align_corners", False)} \
            if mode in ("linear", "bilinear") else {}
        return partial(F.interpolate, size=list(ir.shape), mode=mode, **kwargs)
    return find_ties(desc, op, _axis_reads, "torch")


def _axis_reads(op: Callable, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                a: int) -> tuple[list[list[int]], list[list[int]]]:
    """Per output position along axis ``a``: the input positions the forward reads (one-hot
    slabs through the op) and those its gradient reaches (one-hot cotangent slabs)."""
    n, m = in_shape[a], out_shape[a]

    def slabs(k: int, shape: tuple[int, ...]) -> torch.Tensor:
        idx = torch.arange(k).reshape((k, 1) + (1,) * len(shape))
        pos = torch.arange(k).reshape((1, 1) + tuple(k if j == a else 1
                                                     for j in range(len(shape))))
        return (idx == pos).to(torch.float64).expand((k, CHANNELS) + shape).contiguous()

    def nonzero(t: torch.Tensor) -> np.ndarray:  # (batch, C, *spatial) -> (batch, axis a)
        return (t != 0).sum(dim=tuple(j + 2 for j in range(t.dim() - 2) if j != a) + (1,)
                            ).numpy()
    with torch.no_grad():
        f = nonzero(op(slabs(n, in_shape)))  # (input i, output o)
    x = torch.rand((1, CHANNELS) + tuple(in_shape), dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(op(x), x, slabs(m, tuple(out_shape)).unsqueeze(1),
                               is_grads_batched=True)
    b = nonzero(g[:, 0])  # (output o, input i)
    return ([np.flatnonzero(f[:, o]).tolist() for o in range(m)],
            [np.flatnonzero(b[o]).tolist() for o in range(m)])


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
    return mask_boxes(mask, tuple(out_spatial))
