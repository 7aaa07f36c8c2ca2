"""Crop measurement: a unit's gradient from a forward/backward on a crop holding its region.

A unit depends on no input outside its exact region (``analytic``), so its input gradient can
be computed on a crop of the input that contains the region, then placed back into a
full-size map. It is exact when the crop offset is a multiple of the end-point's effective
stride S (every intermediate index keeps its phase) and nothing in the net depends on the
input size. The crop size here is the same for every interior unit (the region's size
rounded up to a multiple of S), so many crops go through one batched forward and backward
(crops of one shape stacked along the batch: each batch entry carries its own one-hot
cotangent): cost per unit ~ region area instead of image area.

Refusal (``CropRefused``, unless ``force``): the end-point has no integer S or is global, or
the analysis at a crop's size differs from the full one for a unit (r, S, P of the end-point,
or the unit's exact region shifted by the crop offset): TF 'SAME' padding through ``F.pad``
computed at forward time, adaptive pooling and size-dependent upsampling all show up there
(that is :func:`analytic.size_dependence`'s test, done at the sizes actually used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from analytic import analyze
from analytic.errors import ErfError


class CropRefused(ErfError):
    """Cropping would not be exact for this model / end-point; the message says why."""


@dataclass
class CropPlan:
    """Per unit: crop start (input coordinates) and its position inside the crop."""

    starts: np.ndarray  # (k, D)
    sizes: np.ndarray  # (k, D) crop sizes
    inner: np.ndarray  # (k, D) unit position in the crop's end-point coordinates
    stride: tuple[int, ...]
    checked: dict = field(default_factory=dict)  # crop shape -> "ok" or the refusal


def plan(analysis: Any, units: np.ndarray, input_spatial: Sequence[int]) -> CropPlan:
    """Crops for ``units`` of the analysis' end-point (see the module doc)."""
    node = analysis.node()
    if node.is_global or any(s is None for s in node.stride) or \
            any(r is None for r in node.size) or len(node.shape) != len(input_spatial):
        raise CropRefused(f"end-point {node.path or node.name}: r, S undefined or global "
                          f"(r={node.size}, S={node.stride}); every unit reads the whole input")
    S = np.asarray(node.stride, np.int64)
    r = np.asarray(node.size, np.int64)
    n = np.asarray(input_spatial, np.int64)
    boxes = analysis.regions()
    units = np.asarray(units, np.int64).reshape(len(units), -1)
    lo = np.stack([boxes.lo[(slice(None), *u)] for u in units])
    hi = np.stack([boxes.hi[(slice(None), *u)] for u in units])
    size = np.minimum(-(-(r + S) // S) * S, n)  # region + one stride of slack, in strides
    start = (lo // S) * S
    start = np.where(start + size > n, np.maximum(n - size, 0) // S * S, start)
    stop = np.minimum(np.maximum(start + size, hi + 1), n)
    sizes = stop - start
    if np.any(start > lo) or np.any(stop <= hi):
        raise CropRefused("a unit's region does not fit a stride-aligned crop")
    return CropPlan(start, sizes, units - start // S, tuple(int(s) for s in S))


def _verify(model: Any, output: str, full: Any, crop_shape: tuple[int, ...], plan_: CropPlan,
            idx: np.ndarray, lead: tuple[int, ...]) -> str:
    """'ok', or why the crop analysis disagrees with the full one for these units."""
    a = analyze(model, (*lead, *crop_shape), output=output)
    f, c = full.node(), a.node()
    if (f.size, f.stride, f.padding) != (c.size, c.stride, c.padding):
        return (f"at input size {list(crop_shape)} the end-point has r={c.size} S={c.stride} "
                f"P={c.padding}, at {list(full.input_shape)} r={f.size} S={f.stride} "
                f"P={f.padding}: padding (or more) depends on the input size")
    bf, bc = full.regions(), a.regions()
    for i in idx:
        u, v = plan_.inner[i], plan_.starts[i]
        if np.any(u < 0) or np.any(u >= np.asarray(c.shape)):
            return f"unit {plan_.units_full[i]} falls outside its crop's end-point"
        want = np.stack([bf.lo[(slice(None), *(u + v // np.asarray(plan_.stride)))] - v,
                         bf.hi[(slice(None), *(u + v // np.asarray(plan_.stride)))] - v])
        got = np.stack([bc.lo[(slice(None), *u)], bc.hi[(slice(None), *u)]])
        if not np.array_equal(want, got):
            return (f"the exact region of a unit differs between the full input and a crop of "
                    f"size {list(crop_shape)}: the net depends on the input size")
    return "ok"


def _endpoint_output(model: torch.nn.Module, path: str | None):
    """A context that records the end-point module's output (the model's output if None)."""
    store: dict = {}
    if not path:
        return store, None
    module = model.get_submodule(path)
    handle = module.register_forward_hook(lambda m, a, out: store.__setitem__("y", out))
    return store, handle


def measure_cropped(model: torch.nn.Module, x: torch.Tensor, output: str,
                    units: np.ndarray, *, force: bool = False, batch: int = 64,
                    analysis: Any = None) -> tuple[np.ndarray, dict]:
    """Per-unit maps (k, *spatial) of |d y_unit / d x| summed over channels (and the cotangent
    of each unit is 1 on every channel of its position), by crops (see the module doc).

    ``x``: (1, C, *spatial). ``force``: crop even where the check refuses (for tests: the
    refusal is necessary). Returns the maps and {"refused": reason or None, "crops": shapes}.
    """
    model = model.eval()
    spatial = tuple(x.shape[2:])
    full = analysis or analyze(model, tuple(x.shape), output=output)
    p = plan(full, units, spatial)
    p.units_full = np.asarray(units)  # type: ignore[attr-defined]
    info: dict = {"refused": None, "crops": {}}
    shapes: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(p.sizes):
        shapes.setdefault(tuple(int(v) for v in s), []).append(i)
    for shape, idx in shapes.items():
        verdict = _verify(model, output, full, shape, p, np.asarray(idx), tuple(x.shape[:2]))
        info["crops"][str(list(shape))] = len(idx)
        if verdict != "ok":
            info["refused"] = verdict
            if not force:
                raise CropRefused(verdict + "; measure on the full input instead")
    maps = np.zeros((len(p.starts), *spatial))
    path = output
    store, handle = _endpoint_output(model, path)
    try:
        for shape, idx in shapes.items():
            for b0 in range(0, len(idx), batch):
                chunk = idx[b0:b0 + batch]
                crops = torch.cat([x[(slice(None), slice(None),
                                      *(slice(int(s), int(s) + n)
                                        for s, n in zip(p.starts[i], shape)))]
                                   for i in chunk]).detach().requires_grad_(True)
                out = model(crops)
                y = store.get("y", out) if path else out
                cot = torch.zeros_like(y)
                for j, i in enumerate(chunk):
                    cot[(j, slice(None), *(int(v) for v in p.inner[i]))] = 1
                (g,) = torch.autograd.grad(y, crops, cot)
                g = g.abs().sum(1).detach().cpu().numpy()
                for j, i in enumerate(chunk):
                    sl = tuple(slice(int(s), int(s) + n) for s, n in zip(p.starts[i], shape))
                    maps[(i, *sl)] = g[j]
    finally:
        if handle is not None:
            handle.remove()
    return maps, info


def measure_full(model: torch.nn.Module, x: torch.Tensor, output: str | None,
                 units: np.ndarray) -> np.ndarray:
    """The reference: one forward and one backward on the full input per unit."""
    model = model.eval()
    path = output
    store, handle = _endpoint_output(model, path)
    maps = np.zeros((len(units), *x.shape[2:]))
    try:
        for k, u in enumerate(np.asarray(units)):
            xi = x.detach().clone().requires_grad_(True)
            out = model(xi)
            y = store.get("y", out) if path else out
            cot = torch.zeros_like(y)
            cot[(slice(None), slice(None), *(int(v) for v in u))] = 1
            (g,) = torch.autograd.grad(y, xi, cot)
            maps[k] = g.abs().sum(1)[0].numpy()
    finally:
        if handle is not None:
            handle.remove()
    return maps
