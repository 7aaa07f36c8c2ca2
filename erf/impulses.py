"""Which output units to measure, where their impulses go, and how they share backward passes.

Framework-free (numpy only): the backends build the cotangents from what is decided here.

An *impulse* at output unit ``u`` (a spatial position of the end-point) is the cotangent that
is 1 at position ``u`` for **every channel and every batch entry** and 0 elsewhere: the
backward pass then gives the gradient of the sum of the unit's channels. Channels are summed
because the receptive field is a property of the spatial position, and a sum cannot cancel a
channel's support (each channel's gradient is checked against the same region).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytic.errors import ErfError, SpecError

UNIT_KINDS = ("center", "grid:N", "all", "explicit positions")


class MeasureError(ErfError):
    """A measurement cannot be set up or run (names the model, end-point and what to change)."""


# ---- unit selection ---------------------------------------------------------------------------

def axis_grid(n: int, count: int) -> np.ndarray:
    """``count`` evenly spaced positions on an axis of length ``n``, away from the borders.

    Interior points of ``linspace(0, n-1, count+2)`` rounded half up (distinct whenever
    ``count <= n - 2``); ``count = n - 1`` spreads over the whole axis, borders included; and
    ``count >= n`` gives every position.
    """
    if count < 1:
        raise SpecError(f"grid needs at least 1 unit per axis, got {count}")
    if count >= n:
        return np.arange(n)
    points = np.linspace(0, n - 1, count + 2)[1:-1] if count <= n - 2 else \
        np.linspace(0, n - 1, count)
    return np.floor(points + 0.5).astype(np.int64)


def select_units(units, node_shape: Sequence[int]) -> np.ndarray:
    """Positions (k, ndim) of the end-point to measure.

    ``units``: ``"center"`` (index n // 2 on every axis: the middle for odd n, the right one of
    the two middles for even n), ``"grid:N"`` (:func:`axis_grid` per axis, their product, in C
    order), ``"all"`` (every position, C order) or explicit positions (a sequence of index
    tuples, or one tuple). A node with no spatial axes (after global pooling) has one unit, ().
    """
    shape = tuple(int(n) for n in node_shape)
    ndim = len(shape)
    if any(n == 0 for n in shape):
        raise SpecError(f"the end-point has an empty spatial shape {list(shape)}: no units")
    if isinstance(units, str):
        text = units.strip().lower()
        if text == "center":
            return np.array([[n // 2 for n in shape]], dtype=np.int64).reshape(1, ndim)
        if text == "all":
            return np.argwhere(np.ones(shape, bool)).astype(np.int64).reshape(
                math.prod(shape), ndim)
        match = re.fullmatch(r"grid:(\d+)", text)
        if match:
            axes = [axis_grid(n, int(match.group(1))) for n in shape]
            grids = np.meshgrid(*axes, indexing="ij")
            if not ndim:
                return np.zeros((1, 0), np.int64)
            return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        raise SpecError(f"units={units!r}: use 'center', 'grid:N' (e.g. 'grid:4'), 'all' or a "
                        "list of positions")
    arr = np.asarray(units)
    if arr.dtype.kind not in "iu" and arr.size:
        raise SpecError(f"units: explicit positions must be integers, got {units!r}")
    arr = arr.astype(np.int64)
    if arr.ndim == 1 and (arr.size == ndim and ndim > 0):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != ndim or arr.shape[0] == 0:
        raise SpecError(f"units: explicit positions need {ndim} indices each (end-point shape "
                        f"{list(shape)}), got {units!r}")
    bad = [tuple(p) for p in arr.tolist()
           if not all(0 <= i < n for i, n in zip(p, shape))]
    if bad:
        raise SpecError(f"units: positions {bad[:4]} lie outside the end-point of shape "
                        f"{list(shape)}")
    return arr


def unit_boxes(lo: np.ndarray, hi: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Inclusive input boxes (k, D, 2) of the units, from a node's region arrays (D, *shape)."""
    idx = (slice(None), *units.T)
    return np.stack([lo[idx].T, hi[idx].T], axis=-1).reshape(len(units), lo.shape[0], 2)


def box_slices(box: np.ndarray) -> tuple[slice, ...] | None:
    """Numpy slices of an inclusive box (D, 2); None for an empty box (reads no input)."""
    if np.any(box[:, 0] > box[:, 1]):
        return None
    return tuple(slice(int(a), int(b) + 1) for a, b in box)


def hull(boxes: np.ndarray) -> np.ndarray | None:
    """The bounding box (D, 2) of the non-empty boxes among (k, D, 2); None if all are empty."""
    full = boxes[np.all(boxes[:, :, 0] <= boxes[:, :, 1], axis=1)]
    if not len(full):
        return None
    return np.stack([full[:, :, 0].min(0), full[:, :, 1].max(0)], axis=-1)


# ---- packing ----------------------------------------------------------------------------------

def pack_units(boxes: np.ndarray, input_shape: Sequence[int]) -> list[list[int]]:
    """Greedy groups of units whose boxes are pairwise disjoint: one cotangent per group.

    The backward pass is linear in the cotangent and a unit's gradient is zero outside its
    exact region, so each unit's gradient is the group's gradient restricted to its own box.
    Units are taken in order; each joins the first group whose occupied input positions its box
    does not touch (an occupancy mask per group). A unit with an empty box stays alone.
    """
    groups: list[list[int]] = []
    masks: list[np.ndarray] = []
    for i, box in enumerate(boxes):
        sl = box_slices(box)
        if sl is None:
            groups.append([i])
            masks.append(np.ones(tuple(input_shape), bool))
            continue
        for g, mask in zip(groups, masks):
            if not mask[sl].any():
                g.append(i)
                mask[sl] = True
                break
        else:
            mask = np.zeros(tuple(input_shape), bool)
            mask[sl] = True
            groups.append([i])
            masks.append(mask)
    return groups


def unpack(group_map: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per-unit maps (m, *spatial) from one packed group's map: each unit keeps its own box."""
    out = np.zeros((len(boxes), *group_map.shape), group_map.dtype)
    for j, box in enumerate(boxes):
        sl = box_slices(box)
        if sl is not None:
            out[(j, *sl)] = group_map[sl]
    return out


def cpu_budget() -> int:
    """Bytes one chunk of impulses may use on CPU: a quarter of the memory, at most 2 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(min(2 * 2**30, total // 4))


# ---- layouts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Where batch, channel and spatial axes of one tensor are (axis indices).

    ``spatial`` has one entry per spatial axis of the analysis node: the tensor axis holding
    it, or None for a size-1 node axis the tensor does not have (a frontend keeps the axes of
    a global pool through a flatten: node shape (1, 1) for an (N, C) tensor).
    """

    ndim: int
    batch: int | None
    spatial: tuple[int | None, ...]

    @property
    def axes(self) -> tuple[int, ...]:
        """The tensor axes that hold spatial positions, in node-axis order."""
        return tuple(a for a in self.spatial if a is not None)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(a for a in range(self.ndim) if a != self.batch and a not in self.axes)

    @property
    def channels_last(self) -> bool:
        ch = self.channels
        return bool(ch) and bool(self.axes) and min(ch) > max(self.axes)


def parse_layout(layout: str, shape: Sequence[int], spatial_shape: Sequence[int]) -> Layout:
    """A :class:`Layout` from a string such as 'NCHW', 'NHWC', 'NCL' or 'HWC' ('N' batch, 'C'
    channels, any other letter a spatial axis, in the order of the analysis' input axes)."""
    shape = tuple(shape)
    text = layout.upper()
    if len(text) != len(shape) or len(set(text)) != len(text):
        raise SpecError(f"layout {layout!r} does not fit a tensor of shape {list(shape)}: it "
                        "needs one distinct letter per axis ('N' batch, 'C' channels)")
    spatial = tuple(i for i, c in enumerate(text) if c not in "NC")
    found = tuple(shape[i] for i in spatial)
    if found != tuple(spatial_shape):
        raise SpecError(f"layout {layout!r} puts spatial sizes {list(found)} on a tensor of "
                        f"shape {list(shape)}, but the analysis has {list(spatial_shape)}")
    return Layout(len(shape), text.index("N") if "N" in text else None, spatial)


def infer_layout(shape: Sequence[int], spatial_shape: Sequence[int], channels_last: bool,
                 has_batch: bool = True, what: str = "tensor") -> Layout:
    """The layout of a tensor whose spatial sizes the analysis knows.

    Channels-first puts the spatial axes last; channels-last puts them right after the batch
    axis. When both fit the shape, ``channels_last`` decides (the framework's convention).
    Size-1 node axes the tensor lacks (a flattened global pool) are matched last.
    """
    shape = tuple(int(n) for n in shape)
    sp = tuple(int(n) for n in spatial_shape)
    if has_batch and not shape:
        raise MeasureError(f"the {what} is a scalar; expected a batch axis and spatial sizes "
                           f"{list(sp)}")
    found = _match(shape, sp, channels_last, has_batch)
    if found is not None:
        return Layout(len(shape), 0 if has_batch else None, found)
    kept = [i for i, n in enumerate(sp) if n != 1]
    found = _match(shape, tuple(sp[i] for i in kept), channels_last, has_batch)
    if found is not None and len(kept) < len(sp):
        axes: list[int | None] = [None] * len(sp)
        for i, a in zip(kept, found):
            axes[i] = a
        return Layout(len(shape), 0 if has_batch else None, tuple(axes))
    raise MeasureError(f"the {what} has shape {list(shape)}, which does not hold the spatial "
                       f"shape {list(sp)} the analysis gives it (channels-first or -last, "
                       "batch first); is the analysis of this model and input shape?")


def _match(shape: tuple[int, ...], sp: tuple[int, ...], channels_last: bool,
           has_batch: bool) -> tuple[int, ...] | None:
    d, start = len(sp), (1 if has_batch else 0)
    if len(shape) - start < d:
        return None
    first = tuple(range(len(shape) - d, len(shape))) if shape[len(shape) - d:] == sp else None
    last = tuple(range(start, start + d)) if shape[start:start + d] == sp else None
    if first is not None and last is not None:
        return last if channels_last else first
    return first if first is not None else last


def impulse_index(layout: Layout, groups: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Index arrays (cotangent row, *spatial position) of every impulse of a chunk of groups.

    To be used on the cotangent tensor with its spatial axes (:attr:`Layout.axes`) moved
    right after the row axis and every other axis (batch, channels) kept whole:
    ``cot_view[index] = 1``.
    """
    d = len(layout.spatial)
    rows = np.concatenate([np.full(len(g), j, np.int64) for j, g in enumerate(groups)])
    pos = np.concatenate([np.asarray(g, np.int64).reshape(len(g), d) for g in groups])
    kept = [i for i, a in enumerate(layout.spatial) if a is not None]  # phantom axes: index 0
    return (rows, *pos[:, kept].T)


def reduce_axes(layout: Layout) -> tuple[tuple[int, ...], int | None]:
    """Axes of a batched gradient (row axis first) to sum (channels) and to average (batch),
    shifted by one for the row axis; the batch axis is given after the channel sum."""
    channels = tuple(1 + a for a in layout.channels)
    if layout.batch is None:
        return channels, None
    batch_after = 1 + layout.batch - sum(1 for a in layout.channels if a < layout.batch)
    return channels, batch_after


# ---- crops stacked along the batch axis -------------------------------------------------------

def stacked_cotangent(shape: Sequence[int], layout: Layout, inner: np.ndarray,
                      per_crop: int) -> np.ndarray:
    """The cotangent of an end-point output of ``shape`` for crops stacked along the batch
    axis (``per_crop`` entries each): 1 on every channel of crop j's entries at ``inner[j]``."""
    cot = np.zeros(tuple(shape))
    assert layout.batch is not None
    for j, u in enumerate(np.asarray(inner, np.int64)):
        index: list[Any] = [slice(None)] * len(shape)
        index[layout.batch] = slice(j * per_crop, (j + 1) * per_crop)
        for a, pos in zip(layout.spatial, u):
            if a is not None:
                index[a] = int(pos)
        cot[tuple(index)] = 1
    return cot


def unstacked_layout(layout: Layout) -> tuple[Layout, tuple[int, ...]]:
    """For a gradient of crops stacked along the batch axis, moved to the front and split as
    (crop, batch, rest...): the permutation that moves the batch axis first, and the layout of
    one crop's (batch, rest...) tensor (batch axis 0)."""
    b = layout.batch
    assert b is not None
    order = (b, *(a for a in range(layout.ndim) if a != b))

    def moved(a: int | None) -> int | None:
        return None if a is None else order.index(a)
    return Layout(layout.ndim, 0, tuple(moved(a) for a in layout.spatial)), order
