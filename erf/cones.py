"""Dependency cones: for end-point units, the box of positions each ancestor node's values
they depend on (structurally, padding-only positions included), in that node's coordinates.

Regions (:mod:`analytic.regions`) say which *input* pixels a unit reads; a crop must also
hold every intermediate position the unit reads, including positions whose value is a
constant (a window over padding only, a bias), whose crop counterparts could otherwise be
padding with another value. Propagated backwards from the end-point, one box per unit and
node (a bounding box per axis: conservative).
"""

from __future__ import annotations

import numpy as np

from analytic.graph import Graph

_BIG = np.int64(2**40)


def _sparse_table(values: np.ndarray, op) -> list[np.ndarray]:
    table = [values]
    step = 1
    while 2 * step <= len(values):
        prev = table[-1]
        table.append(op(prev[:-step], prev[step:]))
        step *= 2
    return table


def _range_reduce(table: list[np.ndarray], a: np.ndarray, b: np.ndarray, op) -> np.ndarray:
    """op over values[a..b] (inclusive) per query, from a sparse table."""
    length = b - a + 1
    level = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    out = np.empty(len(a), table[0].dtype)
    for lv in np.unique(level):
        sel = level == lv
        t = table[lv]
        out[sel] = op(t[a[sel]], t[b[sel] - (1 << lv) + 1])
    return out


def cone_boxes(graph: Graph, output: str, units: np.ndarray) -> dict[str, tuple]:
    """Per ancestor node: (lo, hi), each (k, node_ndim), of the positions unit k of ``output``
    depends on; lo > hi on an axis where it depends on none."""
    units = np.asarray(units, np.int64).reshape(len(units), -1)
    k = len(units)
    boxes: dict[str, tuple[np.ndarray, np.ndarray]] = {output: (units.copy(), units.copy())}
    for node in reversed(list(graph)):
        if node.name not in boxes:
            continue
        lo_c, hi_c = boxes[node.name]
        alive = np.all(lo_c <= hi_c, axis=1)
        for pname, edge in zip(node.inputs, node.edges):
            parent = graph[pname]
            pd = len(parent.shape)
            lo = np.zeros((k, pd), np.int64)
            hi = np.asarray(parent.shape, np.int64)[None].repeat(k, 0) - 1  # unmapped: whole
            ok = alive.copy()
            for j, m in enumerate(edge.axes):
                if m is None:
                    continue
                reads = m.reads(parent.shape[m.src], node.shape[j])
                valid = reads >= 0
                rmin = np.where(valid, reads, _BIG).min(axis=1) if reads.shape[1] else \
                    np.full(len(reads), _BIG)
                rmax = np.where(valid, reads, -1).max(axis=1) if reads.shape[1] else \
                    np.full(len(reads), -1)
                a = np.clip(lo_c[:, j], 0, len(reads) - 1)
                b = np.clip(hi_c[:, j], 0, len(reads) - 1)
                lo[:, m.src] = _range_reduce(_sparse_table(rmin, np.minimum), a, b, np.minimum)
                hi[:, m.src] = _range_reduce(_sparse_table(rmax, np.maximum), a, b, np.maximum)
            ok &= np.all(lo <= hi, axis=1)
            lo[~ok], hi[~ok] = 1, 0
            if pname in boxes:
                plo, phi = boxes[pname]
                had = np.all(plo <= phi, axis=1)
                lo = np.where((ok & had)[:, None], np.minimum(lo, plo), np.where(ok[:, None],
                                                                                   lo, plo))
                hi = np.where((ok & had)[:, None], np.maximum(hi, phi), np.where(ok[:, None],
                                                                                   hi, phi))
            boxes[pname] = (lo, hi)
    return boxes
