"""Crop measurement: a unit's gradient from a forward and backward pass on a crop of the input
that holds the unit's exact region, placed back into a full-size map.

A unit depends on no input outside its exact region (``analytic``), so its input gradient on
the full input equals the gradient on any crop that contains the region, provided every
intermediate position keeps its phase, keeps its value, and nothing depends on the input
size. The plan here:

- crop starts are multiples of ``L`` per axis, the lcm of the strides of every node the
  end-point depends on (for a node without a stride, after upsampling, the denominator of its
  size ratio to the input), so every intermediate grid keeps its phase;
- interior crops have one size (the largest region plus ``L - 1``, rounded up to a multiple
  of L), so many crops go through one forward and one backward pass stacked along the batch
  axis (each batch entry carries its own unit's impulse); a crop never leaves the input, and
  a unit at the border keeps the real border inside its crop;
- before any crop is used, the model is analysed at each crop size and (1) the end-point's r,
  S, P and every cropped unit's exact region (shifted by the crop's start) must equal the full
  input's: TF 'SAME' padding computed at forward time, ``ceil_mode`` windows at the border,
  adaptive pooling, size-dependent resizing and global ops all show up there; (2) every
  intermediate position a unit reads (:mod:`erf.cones`), those whose value depends on no
  input included (a window over padding only: a bias), must lie inside the crop's node, so
  that no such constant becomes padding of another value. Any failure refuses cropping for
  the whole measurement, with the reason, and every unit is measured on the full input.

Units whose crop would be the whole input gain nothing and go through the full-input path
(where packing applies).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from analytic.errors import ErfError

from .cones import cone_boxes


@dataclass
class CropPlan:
    """Which units are measured on crops, and where: one entry per cropped unit."""

    units: np.ndarray  # (k,) indices into Setup.units
    starts: np.ndarray  # (k, D) crop start in input coordinates
    shape_of: np.ndarray  # (k,) index into shapes
    inner: np.ndarray  # (k, D) the unit's position at the crop's end-point
    shapes: list[tuple[int, ...]] = field(default_factory=list)  # crop spatial sizes
    node_shapes: list[tuple[int, ...]] = field(default_factory=list)  # end-point at each size
    full: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # not cropped
    multiple: tuple[int, ...] = ()
    refused: str | None = None

    def describe(self) -> dict:
        """JSON-ready summary for the settings."""
        return {"cropped_units": int(len(self.units)), "full_units": int(len(self.full)),
                "crop_shapes": [list(s) for s in self.shapes],
                "start_multiple": list(self.multiple), "refused": self.refused}


def node_scale(row: Any, spatial: Sequence[int], a: int) -> Fraction:
    """Positions of a node per input pixel along axis ``a``: 1/S for a sliding window, else
    the ratio of the sizes (upsampled, pixel-shuffled or resized nodes)."""
    rf = row.rf[a]
    if rf.stride is not None:
        return Fraction(1, int(rf.stride))
    return Fraction(int(row.shape[a]), int(spatial[a])).limit_denominator(int(spatial[a]))


def phase_multiple(analysis: Any) -> tuple[int, ...] | str:
    """Per input axis, the lcm of the denominators of every node's scale (:func:`node_scale`)
    over the nodes the end-point depends on, so that a crop shifted by a multiple of it shifts
    every node by whole positions; a string saying why when there is none."""
    graph, out = analysis.graph, analysis.output
    spatial = analysis.input_shape
    multiple = [1] * len(spatial)
    for name in graph.ancestors([out]):
        row = analysis.node(name)
        if row.is_global:
            return f"node {name} ({row.path or row.op}) reads the whole input"
        if len(row.shape) != len(spatial):
            return (f"node {name} ({row.path or row.op}) has {len(row.shape)} spatial axes, the "
                    f"input {len(spatial)}")
        for a in range(len(spatial)):
            multiple[a] = math.lcm(multiple[a], node_scale(row, spatial, a).denominator)
    return tuple(multiple)


def plan(analysis: Any, units: np.ndarray, boxes: np.ndarray) -> CropPlan:
    """Crop starts and sizes for ``units`` (end-point positions, with their clipped exact
    ``boxes`` (k, D, 2)); no model is run here (see :func:`verify`)."""
    node = analysis.node()
    spatial = np.asarray(analysis.input_shape, np.int64)
    k, d = len(units), len(spatial)
    if node.is_global:
        return uncropped(k, d, f"the end-point {node.path or node.name} is global: every unit "
                               "reads the whole input")
    if len(node.shape) != d:
        return uncropped(k, d, f"the end-point has {len(node.shape)} spatial axes and the input "
                               f"{d}: crops need one end-point axis per input axis")
    multiple = phase_multiple(analysis)
    if isinstance(multiple, str):
        return uncropped(k, d, multiple)
    L = np.asarray(multiple, np.int64)
    lo, hi = boxes[:, :, 0].astype(np.int64), boxes[:, :, 1].astype(np.int64)
    empty = np.any(lo > hi, axis=1)
    # one crop size for every interior unit: the largest region (r for a sliding window)
    extent = (hi - lo + 1)[~empty].max(axis=0) if (~empty).any() else np.ones(d, np.int64)
    size = np.minimum(-(-(extent + L - 1) // L) * L, spatial)
    start = (np.maximum(lo, 0) // L) * L
    last = ((spatial - size) // L) * L  # the last aligned start whose crop fits
    start = np.minimum(start, last)
    stop = np.where(start + size >= hi + 1, start + size, spatial)  # right border: to the end
    whole = np.all((start == 0) & (stop == spatial), axis=1) | empty
    keep = np.flatnonzero(~whole)
    sizes = stop[keep] - start[keep]
    shapes = sorted({tuple(int(v) for v in s) for s in sizes})
    shape_of = np.asarray([shapes.index(tuple(int(v) for v in s)) for s in sizes], np.int64)
    scale = [node_scale(node, spatial, a) for a in range(d)]
    num = np.asarray([c.numerator for c in scale], np.int64)
    den = np.asarray([c.denominator for c in scale], np.int64)
    shift = start[keep] * num // den  # whole positions: L clears every scale's denominator
    inner = np.asarray(units, np.int64)[keep] - shift
    return CropPlan(keep, start[keep], shape_of, inner.reshape(len(keep), d), shapes, [],
                    np.flatnonzero(whole), tuple(int(v) for v in L))


def verify(p: CropPlan, full: Any, analyze_at: Callable[[tuple[int, ...]], Any],
           boxes: np.ndarray) -> CropPlan:
    """Analyse at every crop size and hold it against the full analysis (module doc). On a
    difference, every unit goes to the full input and ``refused`` says why."""
    f = full.node()
    spatial = full.input_shape
    ancestors = [n for n in full.graph.ancestors([full.output]) if n != full.graph.input]
    scales = {n: [node_scale(full.node(n), spatial, a) for a in range(len(spatial))]
              for n in ancestors}
    cones = cone_boxes(full.graph, full.output,
                       np.asarray([u for u in _full_positions(p, scales[full.output])]))
    for i, shape in enumerate(p.shapes):
        try:
            a = analyze_at(shape)
        except ErfError as e:
            return _refuse(p, f"the model could not be analysed at the crop size "
                              f"{list(shape)} ({e})")
        c = a.node()
        if (c.size, c.stride, c.padding) != (f.size, f.stride, f.padding):
            return _refuse(p, f"at input size {list(shape)} the end-point has r={list(c.size)} "
                              f"S={list(c.stride)} P={list(c.padding)}, at "
                              f"{list(full.input_shape)} r={list(f.size)} S={list(f.stride)} "
                              f"P={list(f.padding)}: the padding depends on the input size")
        mine = np.flatnonzero(p.shape_of == i)
        inner = p.inner[mine]
        if np.any(inner < 0) or np.any(inner >= np.asarray(c.shape)):
            return _refuse(p, f"a unit falls outside the end-point {list(c.shape)} of a crop of "
                              f"size {list(shape)}")
        cb = a.regions()
        got = np.stack([cb.lo[(slice(None), *inner.T)], cb.hi[(slice(None), *inner.T)]], -1)
        want = boxes[p.units[mine]].transpose(1, 0, 2) - p.starts[mine].T[:, :, None]
        if not np.array_equal(got, want):
            return _refuse(p, f"a unit's exact region differs between the full input and a "
                              f"crop of size {list(shape)}: the net depends on the input size")
        why = _cones_fit(full, a, ancestors, scales, cones, p, mine, shape)
        if why:
            return _refuse(p, why)
        p.node_shapes.append(tuple(c.shape))
    return p


def _full_positions(p: CropPlan, scale: list[Fraction]) -> np.ndarray:
    """The cropped units' end-point positions on the full input."""
    num = np.asarray([c.numerator for c in scale], np.int64)
    den = np.asarray([c.denominator for c in scale], np.int64)
    return p.inner + p.starts * num // den


def _cones_fit(full: Any, crop: Any, ancestors: list[str], scales: dict, cones: dict,
               p: CropPlan, mine: np.ndarray, shape: tuple[int, ...]) -> str | None:
    """Why the crop does not hold every intermediate position the units read (module doc),
    or None: every ancestor node exists at the crop size with the same op, sits inside the
    full node once shifted, and holds each unit's dependency cone."""
    for name in ancestors:
        if name not in crop.graph.nodes or crop.graph[name].op != full.graph[name].op:
            return (f"the graph at input size {list(shape)} differs from the full one at node "
                    f"{name}: the model's structure depends on the input size")
        big = np.asarray(full.graph[name].shape, np.int64)
        small = np.asarray(crop.graph[name].shape, np.int64)
        if len(small) != len(big):
            return f"node {name} changes its axes at input size {list(shape)}"
        num = np.asarray([c.numerator for c in scales[name]], np.int64)
        den = np.asarray([c.denominator for c in scales[name]], np.int64)
        shift, rest = np.divmod(p.starts[mine] * num, den)
        if np.any(rest):
            return f"node {name} would be shifted by a fraction of a position"
        if np.any(shift + small > big):
            return (f"node {name} at input size {list(shape)} ({list(small)}) does not fit its "
                    f"place in the full node ({list(big)})")
        lo, hi = (b[mine] for b in cones[name])
        used = np.all(lo <= hi, axis=1)
        if np.any(used[:, None] & ((lo - shift < 0) | (hi - shift >= small))):
            return (f"a unit reads positions of node {name} ({full.graph[name].path or name}) "
                    f"outside a crop of size {list(shape)} (positions whose value depends on "
                    "no input, e.g. a window over padding only): cropping would change them")
    return None


def uncropped(k: int, d: int, why: str, multiple: tuple[int, ...] = ()) -> CropPlan:
    """The plan that measures all ``k`` units (``d`` input axes) on the full input, and why."""
    return CropPlan(np.zeros(0, np.int64), np.zeros((0, d), np.int64), np.zeros(0, np.int64),
                    np.zeros((0, d), np.int64), full=np.arange(k), multiple=multiple,
                    refused=why)


def _refuse(p: CropPlan, why: str) -> CropPlan:
    return uncropped(len(p.full) + len(p.units), p.starts.shape[1], why, p.multiple)


def cut(x: np.ndarray, axes: Sequence[int], start: np.ndarray, shape: Sequence[int]):
    """The crop of input ``x`` (its spatial ``axes`` in input-axis order) at ``start``."""
    index = [slice(None)] * x.ndim
    for a, s, n in zip(axes, start, shape):
        index[a] = slice(int(s), int(s) + int(n))
    return x[tuple(index)]
