"""Autograd oracle: the exact input support of chosen output positions of a torch model.

Independent of ``analytic``: it runs the real model (a deep copy; the caller's model is
untouched) in float64 and back-propagates one-hot cotangents. For output position ``p`` of the
end-point the cotangent is one at ``p`` for every channel (every non-spatial index), zero
elsewhere; the support is where the input gradient, summed over |.| and channels, is nonzero.

So that nothing cancels: every parameter is redrawn positive (uniform in [0.01, 1.01) divided
by its fan-in), batch norm is neutralised (running mean 0, running var 1, weight 1, positive
bias), inputs are positive. Max pooling passes gradient to one input per window only, so while
the model runs ``torch.nn.functional.max_pool1d/2d/3d`` (what ``nn.MaxPool*d`` call) are
replaced by a *sum* over the same windows (same kernel, stride, dilation, padding, ceil_mode
and output shape) and adaptive max pooling by adaptive average pooling. Ops whose gradient
vanishes on part of the input (ReLU after a mean-subtracting norm) can hide support:
``draws=k`` takes the union over k random draws of weights and inputs.

Main entry points: :func:`support_masks` (boolean masks over the input's spatial dims) and
:func:`support_boxes` (their bounding boxes per input axis). :func:`rsp_from_boxes` reads the
paper's r, S, P off the boxes of unclipped positions.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Box = list  # per input spatial axis: (lo, hi), or None when the position reads nothing


# ---- model preparation ------------------------------------------------------------------------


def prepared(model: nn.Module, seed: int = 0) -> nn.Module:
    """A float64, eval-mode deep copy with positive parameters and neutral batch norm."""
    m = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            fan_in = p[0].numel() if p.ndim >= 2 else 1
            p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.01) / fan_in)
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                if mod.running_mean is not None:
                    mod.running_mean.zero_()
                    mod.running_var.fill_(1.0)
                if mod.weight is not None:
                    mod.weight.fill_(1.0)
                    mod.bias.copy_(torch.rand(mod.bias.shape, generator=g,
                                              dtype=torch.float64) + 0.1)
    return m


def _ntuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v) if len(v) == n else tuple(int(v[0]) for _ in range(n))
    return (int(v),) * n


def sum_pool(x: torch.Tensor, nd: int, kernel_size, stride=None, padding=0, dilation=1,
             ceil_mode: bool = False, out_shape: Sequence[int] | None = None) -> torch.Tensor:
    """Sum over max pooling's windows (zero padding), cropped to max pooling's output shape."""
    k = _ntuple(kernel_size, nd)
    s = _ntuple(stride if stride not in (None, []) else kernel_size, nd)
    p, d = _ntuple(padding, nd), _ntuple(dilation, nd)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x.unsqueeze(0)
    if out_shape is None:
        ref = getattr(torch, f"max_pool{nd}d")
        out_shape = ref(x.detach(), k, s, p, d, ceil_mode).shape[2:]
    pads: list[int] = []
    for i in reversed(range(nd)):
        n, o, span = x.shape[2 + i], out_shape[i], d[i] * (k[i] - 1) + 1
        pads += [p[i], max(p[i], (o - 1) * s[i] + span - n - p[i])]
    xp = F.pad(x, pads)
    c = x.shape[1]
    w = torch.ones((c, 1, *k), dtype=x.dtype, device=x.device)
    y = getattr(F, f"conv{nd}d")(xp, w, stride=s, dilation=d, groups=c)
    y = y[(slice(None), slice(None)) + tuple(slice(0, o) for o in out_shape)]
    return y[0] if unbatched else y


@contextlib.contextmanager
def probed_max_pooling() -> Iterator[None]:
    """Within the block, F.max_pool*d sum over their windows and F.adaptive_max_pool*d
    average over their bins (same shapes), so every read input gets gradient."""
    saved = {}
    for nd in (1, 2, 3):
        for name in (f"max_pool{nd}d", f"adaptive_max_pool{nd}d"):
            saved[name] = getattr(F, name)

    def make_max(nd: int):
        original = saved[f"max_pool{nd}d"]

        def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     return_indices=False):
            summed = sum_pool(input, nd, kernel_size, stride, padding, dilation, ceil_mode)
            if return_indices:  # the real indices, the summed values
                return summed, original(input, kernel_size, stride, padding, dilation,
                                        ceil_mode=ceil_mode, return_indices=True)[1]
            return summed
        return max_pool

    def make_adaptive(nd: int):
        original = saved[f"adaptive_max_pool{nd}d"]
        avg = getattr(F, f"adaptive_avg_pool{nd}d")

        def adaptive_max_pool(input, output_size, return_indices=False):
            if return_indices:
                return avg(input, output_size), original(input, output_size, True)[1]
            return avg(input, output_size)
        return adaptive_max_pool

    try:
        for nd in (1, 2, 3):
            setattr(F, f"max_pool{nd}d", make_max(nd))
            setattr(F, f"adaptive_max_pool{nd}d", make_adaptive(nd))
        yield
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)


# ---- the oracle -------------------------------------------------------------------------------


def _first_tensor(value) -> torch.Tensor:
    for leaf in torch.utils._pytree.tree_leaves(value):
        if isinstance(leaf, torch.Tensor):
            return leaf
    raise ValueError("the end-point produced no tensor")


class _Stop(Exception):
    """Raised by the end-point's hook to skip the rest of the forward pass."""


def _run(model: nn.Module, x: torch.Tensor, output: str | None,
         stop: bool = False) -> tuple[torch.Tensor, int]:
    """The end-point's value and how often its module ran; ``stop``: end the forward pass at
    the module's first call (only valid when it runs once)."""
    if output is None:
        return _first_tensor(model(x)), 1
    sub = model.get_submodule(output.replace("/", "."))
    seen: list[torch.Tensor] = []

    def hook(mod, args, out):
        seen.append(_first_tensor(out))
        if stop:
            raise _Stop

    handle = sub.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f"module {output!r} did not run")
    return seen[-1], len(seen)  # a module called several times: its last call


def all_positions(shape: Sequence[int]) -> list[tuple[int, ...]]:
    return list(itertools.product(*[range(n) for n in shape]))


def support_masks(model: nn.Module, input_shape: Sequence[int],
                  positions: Iterable[Sequence[int]] | None = None, output: str | None = None,
                  *, spatial_dims: Sequence[int] | None = None,
                  out_spatial_dims: Sequence[int] | None = None, seed: int = 0,
                  draws: int = 1, batch: int = 64) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Boolean support masks over the input's spatial dims, one per output position.

    ``positions``: indices into the end-point's spatial dims (``out_spatial_dims``, default
    dims 2 and up; none for an output without spatial dims: one position ``()``), all by
    default. ``output``: a submodule path (its output, via a forward hook), or the model's
    output. ``spatial_dims``: the input's (default 2 and up). Returns (positions, masks) with
    masks of shape (len(positions), *input spatial shape).
    """
    input_shape = tuple(int(n) for n in input_shape)
    in_sp = tuple(range(2, len(input_shape))) if spatial_dims is None else tuple(spatial_dims)
    union = None
    pos_list: list[tuple[int, ...]] | None = None
    for draw in range(draws):
        m = prepared(model, seed + draw)
        g = torch.Generator().manual_seed(10_000 + seed + draw)
        x0 = torch.rand(input_shape, generator=g, dtype=torch.float64) + 0.1
        with torch.no_grad(), probed_max_pooling():
            y0, calls = _run(m, x0, output)
        out_sp = tuple(range(2, y0.ndim)) if out_spatial_dims is None else tuple(out_spatial_dims)
        if pos_list is None:
            pos_list = ([tuple(int(i) for i in p) for p in positions] if positions is not None
                        else all_positions([y0.shape[d] for d in out_sp]))
        masks = []
        for start in range(0, len(pos_list), batch):
            grads = _gradients(m, x0, y0, output, pos_list[start:start + batch], out_sp,
                               batch_dim=0 not in in_sp, stop=calls == 1)
            other = tuple(1 + d for d in range(len(input_shape)) if d not in in_sp)
            g_abs = grads.abs().sum(dim=other) if other else grads.abs()
            masks.append((g_abs > 0).numpy())
        mask = np.concatenate(masks) if masks else np.zeros((0,), bool)
        union = mask if union is None else (union | mask)
    assert pos_list is not None and union is not None
    return pos_list, union


def _one_hot(shape: Sequence[int], chunk: list, out_sp: Sequence[int], dtype) -> torch.Tensor:
    """Cotangents (len(chunk), *shape): one at each position for every non-spatial index."""
    ct = torch.zeros((len(chunk), *shape), dtype=dtype)
    for b, p in enumerate(chunk):
        idx: list = [b] + [slice(None)] * len(shape)
        for d, i in zip(out_sp, p):
            idx[1 + d] = i
        ct[tuple(idx)] = 1.0
    return ct


def _gradients(m: nn.Module, x0: torch.Tensor, y0: torch.Tensor, output: str | None,
               chunk: list, out_sp: Sequence[int], batch_dim: bool,
               stop: bool = False) -> torch.Tensor:
    """Input gradients (len(chunk), *x0.shape) of the one-hot cotangents of ``chunk``.

    Fast path: a batch of identical inputs, one cotangent per sample, one backward pass (valid
    when samples do not interact: checked on the forward values); else a vmapped backward."""
    k = len(chunk)
    if batch_dim and x0.shape[0] == 1 and y0.ndim and y0.shape[0] == 1 and 0 not in out_sp:
        x = x0.repeat((k,) + (1,) * (x0.ndim - 1)).requires_grad_()
        try:
            with probed_max_pooling():
                y, _ = _run(m, x, output, stop)
        except RuntimeError:  # the model fixes the batch size (a view, a constant grid)
            y = y0
        if y is not y0 and y.shape[0] == k and torch.allclose(
                y.detach(), y0.expand_as(y), rtol=1e-6, atol=0.0):
            ct = _one_hot(y0.shape, chunk, out_sp, y.dtype).reshape(y.shape)
            return torch.autograd.grad(y, x, ct)[0].unsqueeze(1)
    x = x0.clone().requires_grad_()
    with probed_max_pooling():
        y, _ = _run(m, x, output, stop)
    ct = _one_hot(y.shape, chunk, out_sp, y.dtype)
    try:
        return torch.autograd.grad(y, x, ct, retain_graph=True, is_grads_batched=True)[0]
    except RuntimeError:  # an op without a batching rule: one backward pass per cotangent
        return torch.stack([torch.autograd.grad(y, x, c, retain_graph=True)[0] for c in ct])


def boxes_from_masks(masks: np.ndarray) -> list[Box]:
    """Per mask, per axis (lo, hi) of the nonzero entries, or a list of None if empty."""
    out: list[Box] = []
    nd = masks.ndim - 1
    for mask in masks:
        if not mask.any():
            out.append([None] * nd)
            continue
        box = []
        for a in range(nd):
            hit = np.flatnonzero(mask.any(axis=tuple(b for b in range(nd) if b != a)))
            box.append((int(hit[0]), int(hit[-1])))
        out.append(box)
    return out


def support_boxes(model: nn.Module, input_shape: Sequence[int],
                  positions: Iterable[Sequence[int]] | None = None, output: str | None = None,
                  **kwargs) -> list[Box]:
    """Bounding box of the input support of each output position (see :func:`support_masks`
    for the arguments): per input spatial axis (lo, hi) inclusive, or None where the position
    depends on no input."""
    _, masks = support_masks(model, input_shape, positions, output, **kwargs)
    return boxes_from_masks(masks)


def rsp_from_boxes(boxes: dict[tuple[int, ...], Box], axis: int, n: int,
                   out_axis: int | None = None) -> tuple[int | None, ...]:
    """The paper's (r, S, P) along input ``axis`` (of size ``n``) from the boxes of output
    positions (keys).

    Clipping only shrinks a box, so r is the largest size among boxes that touch neither
    border; S the step between neighbouring positions (along output index ``out_axis``, by
    default the same) that both reach it; P = x*S - lo(x) there. None where no position shows
    it (r would exceed the input).
    """
    j = axis if out_axis is None else out_axis
    spans = {p: b[axis] for p, b in boxes.items()
             if b[axis] is not None and b[axis][0] > 0 and b[axis][1] < n - 1}
    if not spans:
        return None, None, None
    size = max(hi - lo + 1 for lo, hi in spans.values())
    full = {p: lo for p, (lo, hi) in spans.items() if hi - lo + 1 == size}
    stride = padding = None
    for p, lo in full.items():
        q = p[:j] + (p[j] + 1,) + p[j + 1:]
        if q in full:
            stride = full[q] - lo
            padding = p[j] * stride - lo
            break
    return size, stride, padding


# ---- the check the tests run: analysis vs oracle ---------------------------------------------


def compare(model: nn.Module, input_shape: Sequence[int], output: str | None = None,
            positions: Iterable[Sequence[int]] | None = None, *, exact: bool = True,
            rsp: bool = False, draws: int = 1, out_spatial_dims: Sequence[int] | None = None,
            trace_options: dict | None = None, capture=None):
    """Analyze ``model`` with the torch frontend and hold its exact regions against the
    oracle at ``positions`` (all by default): equal boxes (``exact``) or analysis boxes that
    contain the oracle's (global ops). ``rsp``: r, S, P of the end-point must equal what the
    oracle's unclipped boxes show. ``capture``: reuse a :func:`trace64` of the same model.
    Returns (analysis, capture, {position: oracle box})."""
    from analytic.analysis import analyze_graph

    cap = capture or trace64(model, input_shape, **(trace_options or {}))
    analysis = analyze_graph(cap.graph, output)
    pos, masks = support_masks(model, input_shape, positions, output, draws=draws,
                               out_spatial_dims=out_spatial_dims)
    oracle = dict(zip(pos, boxes_from_masks(masks)))
    boxes = analysis.regions()
    bad = []
    for p, want in oracle.items():
        got = [tuple(b) if b is not None else None
               for b in boxes.at(cap.torch_index(analysis.output, p, out_spatial_dims))]
        ok = got == list(want) if exact else _contains(got, list(want))
        if not ok:
            bad.append(f"{p}: analysis {got} oracle {list(want)}")
    assert not bad, (f"{len(bad)} of {len(oracle)} positions of {analysis.output!r} differ:\n  "
                     + "\n  ".join(bad[:8]))
    if rsp:
        for a in range(len(input_shape) - 2):
            want = rsp_from_boxes(oracle, a, int(input_shape[2 + a]))
            got = (analysis.size[a], analysis.stride[a], analysis.padding[a])
            assert all(w is None or w == g for w, g in zip(want, got)), (a, got, want)
            assert want[0] is not None, f"no unclipped position shows r on axis {a}"
    return analysis, cap, oracle


def trace64(model: nn.Module, input_shape: Sequence[int], **options):
    """The torch frontend's capture of a float64 copy, like the oracle's model: interpolation
    index arithmetic runs in the tensor's precision (a float32 model can read a neighbour
    with weight 1e-8 where float64 does not)."""
    from analytic.frontends.torch import trace

    example = torch.rand(tuple(input_shape), dtype=torch.float64)
    return trace(copy.deepcopy(model).double(), example_inputs=example, **options)


def _contains(outer: list, inner: list) -> bool:
    for o, i in zip(outer, inner):
        if i is None:
            continue
        if o is None or o[0] > i[0] or o[1] < i[1]:
            return False
    return True
