"""Exact input regions of every position of a node, at a concrete input size (DESIGN.md §4).

For every node we propagate, for each output position, the box (per input axis: lowest and
highest input index) of the input positions it can depend on. A window op takes the min/max
over the positions its window reads (padding reads nothing), a multi-input op the min/max over
its inputs. Boxes are n-dimensional per position, so a position that reads nothing from one
input (padding along another axis) does not widen the box: the result is the exact bounding box
of the dependency set, clipped at every layer, with no alignment or shift-invariance assumed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .graph import Edge, Graph
from .limits import check_memory

_HINT = ("r, S and P need no exact regions (leave out --regions / regions()); or analyze at a "
         "smaller input size.")

_EMPTY = np.int64(2**40)  # sentinel: "reads no input"; min() ignores it


@dataclass(frozen=True, eq=False)
class Boxes:
    """Exact regions of every position of one node.

    ``lo`` and ``hi`` have shape (D, *node_shape) for D input axes: position ``idx`` depends
    on input indices ``lo[a][idx] .. hi[a][idx]`` (inclusive) along input axis a, and on none
    outside. Positions that depend on no input (pure padding) have ``lo > hi``.
    """

    lo: np.ndarray
    hi: np.ndarray

    @property
    def reads_input(self) -> np.ndarray:
        """Boolean mask over node positions: True where the position depends on the input."""
        return np.all(self.lo <= self.hi, axis=0) if len(self.lo) else np.ones(self.lo.shape[1:],
                                                                                   bool)

    @property
    def sizes(self) -> np.ndarray:
        """Per-position region size per input axis, shape (D, *node_shape); 0 where empty."""
        return np.where(self.lo <= self.hi, self.hi - self.lo + 1, 0)

    def at(self, index: Iterable[int]) -> list[tuple[int, int] | None]:
        """The region of one position: per input axis (lo, hi), or None where it reads nothing."""
        idx = tuple(index)
        lo, hi = self.lo[(slice(None), *idx)], self.hi[(slice(None), *idx)]
        if np.any(lo > hi):
            return [None] * len(lo)
        return [(int(u), int(v)) for u, v in zip(lo, hi)]

    def containing(self, point: Iterable[int]) -> np.ndarray:
        """Indices (k, node_ndim) of the positions whose region contains an input point."""
        p = np.asarray(tuple(point)).reshape((-1,) + (1,) * (self.lo.ndim - 1))
        inside = np.all((self.lo <= p) & (p <= self.hi), axis=0)
        return np.argwhere(inside)


def _input_values(shape: tuple[int, ...]) -> np.ndarray:
    """Stacked [lo..., -hi...] of the input node: position i depends on itself."""
    check_memory(8 * (3 * len(shape) + 1) * int(np.prod(shape, dtype=object)),
                 f"exact regions at input size {'x'.join(map(str, shape))}", _HINT)
    grids = list(np.meshgrid(*[np.arange(n, dtype=np.int64) for n in shape], indexing="ij"))
    return np.stack(grids + [-g for g in grids]) if grids else np.zeros((0,), np.int64)


def _gather_min(values: np.ndarray, axis: int, reads: np.ndarray) -> np.ndarray:
    """Min over the positions each output reads along ``axis`` (reads -1 = nothing)."""
    n_in = values.shape[axis]
    n_out, width = reads.shape
    out_shape = list(values.shape)
    out_shape[axis] = n_out
    check_memory(8 * (values.size + 2 * int(np.prod(out_shape, dtype=object)) * max(width, 1)),
                 f"exact regions of {n_out} positions reading {width} each along an axis", _HINT)
    if width == 0 or n_out == 0:
        return np.full(out_shape, _EMPTY)
    pad_shape = list(values.shape)
    pad_shape[axis] = 1
    padded = np.concatenate([values, np.full(pad_shape, _EMPTY)], axis=axis)
    idx = np.where(reads < 0, n_in, reads)
    if width == 1:
        return np.take(padded, idx[:, 0], axis=axis)
    return np.take(padded, idx, axis=axis).min(axis=axis + 1)


def apply_edge(values: np.ndarray, edge: Edge, out_shape: tuple[int, ...]) -> np.ndarray:
    """Push a producer's stacked region values through one edge to the consumer's positions."""
    parent_ndim = values.ndim - 1
    reduced = edge.reduced(parent_ndim)
    if reduced:
        values = values.min(axis=tuple(1 + a for a in reduced))
    kept = [a for a in range(parent_ndim) if a not in reduced]
    mapped = [m for m in edge.axes if m is not None]
    values = values.transpose(0, *[1 + kept.index(m.src) for m in mapped])
    for i, m in enumerate(mapped):
        j = edge.axes.index(m)
        values = _gather_min(values, 1 + i, m.reads(values.shape[1 + i], out_shape[j]))
    for j, m in enumerate(edge.axes):
        if m is None:
            values = np.expand_dims(values, 1 + j)
    return np.broadcast_to(values, (values.shape[0], *out_shape))


def exact_regions(graph: Graph, targets: Iterable[str]) -> dict[str, Boxes]:
    """Exact per-position regions of the ``targets`` nodes; intermediates freed when done."""
    targets = list(dict.fromkeys(targets))
    live = graph.ancestors(targets)
    remaining = {n: 0 for n in live}
    for name in live:
        for p in set(graph[name].inputs):
            remaining[p] += 1
    ndim = len(graph.input_shape)
    values: dict[str, np.ndarray] = {}
    out: dict[str, Boxes] = {}
    for node in graph:
        if node.name not in live:
            continue
        if node.name == graph.input:
            v = _input_values(node.shape)
        else:
            v = None
            for pname, edge in zip(node.inputs, node.edges):
                w = apply_edge(values[pname], edge, node.shape)
                v = w if v is None else np.minimum(v, w)
            assert v is not None
            for p in set(node.inputs):
                remaining[p] -= 1
                if remaining[p] == 0 and p not in targets:
                    del values[p]
        values[node.name] = v
        if node.name in targets:
            lo, neg_hi = v[:ndim], v[ndim:]
            empty = lo >= _EMPTY
            out[node.name] = Boxes(np.where(empty, 1, lo), np.where(empty, 0, -neg_hi))
    return out
