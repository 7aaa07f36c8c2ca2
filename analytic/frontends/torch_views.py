"""Views (reshape, flatten, squeeze, permute): new torch dims over the same IR axes.

A view regroups the row-major factors of its input into the output dims (see
:class:`~analytic.frontends.torch_layout.Factor`); spatial axes that survive keep their
identity, axes a view cannot follow (sizes that do not line up) become global.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CaptureError
from ..graph import AxisMap, Edge
from .torch_layout import Dim, Factor, Layout, Translated, normalize, plain


def reshape(layout: Layout, out_shape: Sequence[int]) -> tuple[list[Dim], set[int]]:
    """Dims of a view/reshape to ``out_shape``, and the IR axes it scrambles (made global).

    The row-major factors of the input are regrouped into the output dims; a factor that must
    be split is split when its size divides evenly, otherwise the whole block of dims whose
    sizes do not line up is scrambled. Size-1 dims sit between blocks: where the input and the
    output have the same number of them at a block boundary (``alias``, a view that keeps the
    size-1 dims), they are matched in order, so a 1-pixel axis keeps its dim; elsewhere its
    axis is hidden (size 1, carried without a dim).
    """
    atoms: list[Factor] = []
    unit_in: dict[int, list[Dim]] = {}  # atom boundary -> the size-1 input dims there, in order
    for dim in layout.dims:
        real = [f for f in dim if f.size != 1]
        if real:
            atoms += real
        else:
            unit_in.setdefault(len(atoms), []).append(dim)
    outs = [int(s) for s in out_shape]
    result: list[Dim] = [()] * len(outs)
    broken: set[int] = set()
    nonunit = [k for k, s in enumerate(outs) if s != 1]
    unit_out: dict[int, list[int]] = {}  # output boundary -> the size-1 output dims there
    for k, s in enumerate(outs):
        if s == 1:
            unit_out.setdefault(sum(1 for j in nonunit if j < k), []).append(k)
    boundaries = [(0, 0)]
    i, j = 0, 0
    while i < len(atoms) or j < len(nonunit):
        block_atoms: list[Factor] = []
        block_outs: list[int] = []
        pa, po = 1, 1
        while not (block_atoms and block_outs and pa == po):
            if pa < po or (pa == po and not block_atoms):
                if i == len(atoms):
                    raise CaptureError(f"cannot follow a view from {_sizes(layout)} to {outs}")
                block_atoms.append(atoms[i])
                pa *= atoms[i].size
                i += 1
            else:
                if j == len(nonunit):
                    raise CaptureError(f"cannot follow a view from {_sizes(layout)} to {outs}")
                block_outs.append(nonunit[j])
                po *= outs[nonunit[j]]
                j += 1
        grouped = _split_block(block_atoms, [outs[k] for k in block_outs])
        if grouped is None:
            broken |= {f.axis for f in block_atoms if f.axis is not None}
            for k in block_outs:
                result[k] = plain(outs[k])
        else:
            for k, dim in zip(block_outs, grouped):
                result[k] = dim
        boundaries.append((i, j))
    for a, o in boundaries:
        ins, targets = unit_in.get(a, []), unit_out.get(o, [])
        if len(ins) == len(targets):
            for dim, k in zip(ins, targets):
                result[k] = dim
    if broken:
        result = [normalize(Factor(None, 1, f.size) if f.axis in broken else f for f in dim)
                  for dim in result]
    return [normalize(d) for d in result], broken


def _sizes(layout: Layout) -> list[int]:
    return [int(np.prod([f.size for f in d])) if d else 1 for d in layout.dims]


def _split_block(atoms: list[Factor], sizes: list[int]) -> list[Dim] | None:
    """Group ``atoms`` (product = product of ``sizes``) into dims of ``sizes``; None if an atom
    would have to be split unevenly."""
    atoms = list(atoms)
    out: list[Dim] = []
    k = 0
    for s in sizes:
        acc: list[Factor] = []
        prod = 1
        while prod < s:
            a = atoms[k]
            if prod * a.size <= s and s % (prod * a.size) == 0:
                acc.append(a)
                prod *= a.size
                k += 1
                continue
            need = s // prod
            if s % prod or a.size % need:
                return None
            inner = a.size // need
            acc.append(Factor(a.axis, a.stride * inner if a.axis is not None else 1, need))
            atoms[k] = Factor(a.axis, a.stride if a.axis is not None else 1, inner)
            prod *= need
        if prod != s:
            return None
        out.append(normalize(acc))
    return out


def relayout(layout: Layout, origins: Sequence[int | None], dims: Sequence[Dim],
             broken: set[int]) -> Translated:
    """A view: same IR axes minus the ``broken`` ones (made global), new torch dims."""
    keep = [a for a in range(len(layout.node_shape)) if a not in broken]
    new = {a: i for i, a in enumerate(keep)}
    out_dims = tuple(normalize(Factor(new[f.axis], f.stride, f.size) if f.axis is not None
                               else f for f in dim) for dim in dims)
    edge = Edge(tuple(AxisMap.identity(a) for a in keep))
    return Translated(tuple(layout.node_shape[a] for a in keep), [edge], out_dims,
                      tuple(origins[a] for a in keep))
