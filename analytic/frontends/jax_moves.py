"""Rules for lax primitives that move data along axes: pad, slice, dynamic slices, rev,
concatenate, split, tile, stack, gather, scatter, sort, cumulative ops, fft.

Separable moves get per-axis maps from their parameters. ``gather`` and ``scatter`` with
constant indices are run on arrays of source coordinates (the primitive itself tells where
each output element comes from); data-dependent indices make the indexed axes global.
"""

from __future__ import annotations

import numpy as np

from .jax_maps import (
    as_read,
    cumulative,
    from_sets,
    interior_pad,
    reversed_axis,
    shifted,
    tiled,
    whole,
)
from .jax_table import RULES, Op
from .jax_values import Const, Data, Value


def _same(x: Data) -> list:
    return [(k, None) for k in range(x.ndim)]


@RULES.register("pad")
def pad(op: Op) -> list[Value]:
    """lo/hi padding (negative = crop) is a k=1 window; interior padding reads explicitly"""
    x = op.data(0)
    v = op.data(1)  # a data-dependent padding value: read everywhere (over-approximation)
    out = op.out_shapes[0]
    operands, rows = [], []
    if x is not None:
        operands.append(x)
        rows.append([(k, interior_pad(x.shape[k], lo, hi, interior))
                     for k, (lo, hi, interior) in enumerate(op.params["padding_config"])])
    if v is not None:
        operands.append(v)
        rows.append([None] * len(out))
    return [op.emit(operands, out, rows, kind="pad")]


@RULES.register("slice")
def slice_(op: Op) -> list[Value]:
    """start/limit/stride: a k=1 window of stride s and padding -start"""
    x = op.data(0)
    assert x is not None
    p = op.params
    out = op.out_shapes[0]
    strides = p["strides"] or (1,) * len(out)
    return [op.emit([x], out, [[(k, shifted(x.shape[k], out[k], p["start_indices"][k], s))
                                for k, s in enumerate(strides)]])]


def _starts(op: Op, first: int, n: int) -> list[int | None]:
    """Constant start indices (None where data-dependent or unknown)."""
    out: list[int | None] = []
    for i in range(first, first + n):
        v = op.inputs[i]
        out.append(int(np.asarray(v.value)) if isinstance(v, Const) else None)
    return out


@RULES.register("dynamic_slice")
def dynamic_slice(op: Op) -> list[Value]:
    """constant start indices (clamped as lax does): a shifted k=1 window; else global"""
    x = op.data(0)
    out = op.out_shapes[0]
    shape = op.in_shape(0)
    starts = _starts(op, 1, len(shape))
    operands, rows = [], []
    if x is not None:
        row = []
        for k, s in enumerate(starts):
            if s is None:
                row.append((k, whole(shape[k], out[k])))
            else:
                row.append((k, shifted(shape[k], out[k], min(max(s, 0), shape[k] - out[k]))))
        operands.append(x)
        rows.append(row)
    for i in range(1, len(op.inputs)):
        d = op.data(i)
        if d is not None:
            operands.append(d)
            rows.append([None] * len(out))
    return [op.emit(operands, out, rows, kind="dynamic_slice")]


@RULES.register("dynamic_update_slice")
def dynamic_update_slice(op: Op) -> list[Value]:
    """the update box reads the update; the operand is read outside it (exactly when the box
    is partial along one spatial axis only, else everywhere: an over-approximation)"""
    x, u = op.data(0), op.data(1)
    out = op.out_shapes[0]
    ushape = op.in_shape(1)
    starts = _starts(op, 2, len(out))
    starts = [None if s is None else min(max(s, 0), n - m)
              for s, n, m in zip(starts, out, ushape)]
    operands, rows = [], []
    if x is not None:
        partial = [k for k in range(len(out)) if ushape[k] < out[k] or starts[k] is None]
        row: list = _same(x)
        if len(partial) == 1 and starts[partial[0]] is not None and x.axis(partial[0]) is not None:
            k = partial[0]
            i = np.arange(out[k])
            inside = (i >= starts[k]) & (i < starts[k] + ushape[k])
            row[k] = (k, np.where(inside, -1, i)[:, None])
        if partial:
            operands.append(x)
            rows.append(row)
    if u is not None:
        operands.append(u)
        rows.append([(k, whole(ushape[k], out[k]) if s is None else shifted(ushape[k], out[k], -s))
                     for k, s in enumerate(starts)])
    for i in range(2, len(op.inputs)):
        d = op.data(i)
        if d is not None:
            operands.append(d)
            rows.append([None] * len(out))
    return [op.emit(operands, out, rows, kind="dynamic_update_slice")]


@RULES.register("rev")
def rev(op: Op) -> list[Value]:
    """reversed dimensions read n-1-i (explicit: not a window)"""
    x = op.data(0)
    assert x is not None
    dims = set(op.params["dimensions"])
    return [op.emit([x], x.shape, [[(k, reversed_axis(n) if k in dims else None)
                                    for k, n in enumerate(x.shape)]], kind="rev")]


@RULES.register("concatenate")
def concatenate(op: Op) -> list[Value]:
    """each input is a k=1 window shifted to its offset along the dimension"""
    dim = op.params["dimension"]
    out = op.out_shapes[0]
    operands, rows = [], []
    offset = 0
    for i in range(len(op.inputs)):
        n = op.in_shape(i)[dim]
        x = op.data(i)
        if x is not None:
            row = _same(x)
            row[dim] = (dim, shifted(n, out[dim], -offset))
            operands.append(x)
            rows.append(row)
        offset += n
    return [op.emit(operands, out, rows, kind="concatenate")]


@RULES.register("split")
def split(op: Op) -> list[Value]:
    """each output is a slice along ``axis``"""
    x = op.data(0)
    assert x is not None
    axis = op.params["axis"]
    outs: list[Value] = []
    offset = 0
    for shape in op.out_shapes:
        row = _same(x)
        row[axis] = (axis, shifted(x.shape[axis], shape[axis], offset))
        outs.append(op.emit([x], shape, [row]))
        offset += shape[axis]
    return outs


@RULES.register("tile")
def tile(op: Op) -> list[Value]:
    """repeated dimensions read i mod n"""
    x = op.data(0)
    assert x is not None
    reps = op.params["reps"]
    row = [(k, tiled(x.shape[k], r) if r > 1 else None) for k, r in enumerate(reps)]
    return [op.emit([x], op.out_shapes[0], [row], kind="tile")]


@RULES.register("stack")
def stack(op: Op) -> list[Value]:
    """the new dimension is not spatial; the others read their position in every input"""
    axis = op.params["axis"]
    out = op.out_shapes[0]
    xs = [x for x in (op.data(i) for i in range(len(op.inputs))) if x is not None]
    row = [(k - (k > axis), None) if k != axis else None for k in range(len(out))]
    return [op.emit(xs, out, [row] * len(xs))]


@RULES.register("unstack")
def unstack(op: Op) -> list[Value]:
    """output j is index j along ``axis`` (a size-1 axis when that dimension is spatial)"""
    x = op.data(0)
    assert x is not None
    axis = op.params["axis"]
    row = [(k + (k >= axis), None) for k in range(x.ndim - 1)]
    return [op.emit([x], shape, [row], pinned=[(0, axis, np.array([j]))], kind="unstack")
            for j, shape in enumerate(op.out_shapes)]


def _along(op: Op, dims, how, kind: str) -> list[Value]:
    """Every input read with identity maps except ``how(n_in, n_out)`` along ``dims``."""
    out = op.out_shapes[0]
    xs = [x for x in (op.data(i) for i in range(len(op.inputs))) if x is not None]
    rows = [[(k, how(x.shape[k], out[k]) if k in dims else None) for k in range(len(out))]
            for x in xs]
    node = op.emit(xs, out, rows, kind=kind)
    return [node] * len(op.eqn.outvars)


@RULES.register("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
def cumulative_op(op: Op) -> list[Value]:
    """position i reads 0..i along ``axis`` (i..n-1 when reversed)"""
    rev = bool(op.params["reverse"])
    return _along(op, {op.params["axis"]}, lambda n, m: cumulative(n, rev), "cumulative")


@RULES.register("sort")
def sort(op: Op) -> list[Value]:
    """sorted dimension: global along it (all operands: keys permute the others)"""
    return _along(op, {op.params["dimension"]}, whole, "global")


@RULES.register("top_k", "approx_top_k")
def top_k(op: Op) -> list[Value]:
    """global along the reduced dimension"""
    axis = op.params.get("axis", op.params.get("reduction_dimension", -1))
    return _along(op, {axis % len(op.in_shape(0))}, whole, "global")


@RULES.register("fft")
def fft(op: Op) -> list[Value]:
    """global along the transformed (last) dimensions"""
    nd = len(op.in_shape(0))
    k = len(op.params["fft_lengths"])
    return _along(op, set(range(nd - k, nd)), whole, "global")


# ---- gather / scatter by coordinates ----------------------------------------------------------

def _coords(x: Data, shape) -> dict[int, np.ndarray]:
    """Per spatial dimension k of simple x: an int32 array of ``shape`` holding the index."""
    out = {}
    for k in range(x.ndim):
        if x.axis(k) is not None:
            idx = np.arange(shape[k], dtype=np.int32).reshape([-1 if j == k else 1
                                                               for j in range(len(shape))])
            out[k] = np.broadcast_to(idx, shape)
    return out


def _separate(sources: dict[int, list[np.ndarray]], out_shape, taken: set[int],
              same_rank: bool) -> tuple[dict[int, tuple[int, list[np.ndarray]]],
                                        dict[int, np.ndarray]]:
    """Assign each source dim (whose coordinates, per output element, are given by arrays,
    -1 = none) to the output dim it varies along, with the union of coordinates per index.

    Returns ``{source dim: (output dim, rows)}`` and ``{source dim: pinned reads}`` for
    coordinates that do not vary at all and have no dim of their own (the rank changes).
    """
    placed, pinned = {}, {}
    total = int(np.prod(out_shape))
    for d, arrays in sources.items():
        values = np.unique(np.concatenate([a.ravel() for a in arrays]))
        values = values[values >= 0]
        if len(values) <= 1:  # one source index: on the same dim if the rank is kept
            v = values if len(values) else np.array([-1])
            if same_rank and d not in taken:
                taken.add(d)
                placed[d] = (d, [v] * out_shape[d])
            else:
                pinned[d] = v
            continue
        best = None
        for k in range(len(out_shape)):
            if k in taken:
                continue
            rows = []
            for i in range(out_shape[k]):
                v = np.unique(np.concatenate([np.take(a, i, axis=k).ravel() for a in arrays]))
                rows.append(v[v >= 0])
            # candidates per output element: minimal (one each) along the dim it depends on
            cost = sum(len(r) for r in rows) * (total // max(out_shape[k], 1))
            if best is None or cost < best[0]:
                best = (cost, k, rows)
        if best is None:
            continue  # no output dimension left: reduced (global), sound
        taken.add(best[1])
        placed[d] = (best[1], best[2])
    return placed, pinned


def _coordinate_rule(op: Op, operands: list[Data], sources: list[dict[int, list[np.ndarray]]],
                     kind: str) -> Data:
    out = op.out_shapes[0]
    rows_all, pinned_all = [], []
    for i, (x, src) in enumerate(zip(operands, sources)):
        # operands may share output dims (scatter: operand and updates fill the same output)
        placed, pinned = _separate(src, out, set(), x.ndim == len(out))
        row: list = [None] * len(out)
        for d, (k, rows) in placed.items():
            row[k] = (d, as_read(from_sets(rows), x.shape[d]))
        pinned_all += [(i, d, v) for d, v in pinned.items()]
        rows_all.append(row)
    return op.emit(operands, out, rows_all, pinned_all, kind=kind)


def _dependent_indices(op: Op, index_slot: int) -> list[Value] | None:
    if isinstance(op.inputs[index_slot], Const):
        return None
    return op.everything()


@RULES.register("gather")
def gather(op: Op) -> list[Value]:
    """constant indices: exact per-axis reads (run on coordinates); data indices: global"""
    import jax

    dependent = _dependent_indices(op, 1)
    if dependent is not None:
        return dependent
    x = op.data(0)
    assert x is not None
    p = op.params
    idx = op.const(1)
    shape = op.in_shape(0)
    sources = {}
    for k, c in _coords(x, shape).items():
        g = jax.lax.gather(c, idx, p["dimension_numbers"], p["slice_sizes"],
                           indices_are_sorted=p["indices_are_sorted"],
                           unique_indices=p["unique_indices"], mode=p["mode"], fill_value=-1)
        sources[k] = [np.asarray(g)]
    return [_coordinate_rule(op, [x], [sources], "gather")]


@RULES.register("scatter", "scatter-add", "scatter-mul", "scatter-min", "scatter-max",
                "scatter-sub")
def scatter(op: Op) -> list[Value]:
    """constant indices: updates read where they land (hull of duplicates), the operand
    where it is kept (everywhere for combining scatters); data indices: global"""
    import jax

    dependent = _dependent_indices(op, 1)
    if dependent is not None:
        return dependent
    x, u = op.data(0), op.data(2)
    p = op.params
    idx = op.const(1)
    shape, ushape = op.in_shape(0), op.in_shape(2)
    kw = dict(dimension_numbers=p["dimension_numbers"],
              indices_are_sorted=p["indices_are_sorted"], unique_indices=p["unique_indices"],
              mode=p["mode"])
    big = np.int32(2**30)
    operands, sources = [], []
    if x is not None:
        src = {}
        if op.prim == "scatter":
            hit = np.asarray(jax.lax.scatter(np.zeros(shape, np.int32), idx,
                                             np.ones(ushape, np.int32), **kw))
            for k, c in _coords(x, shape).items():
                src[k] = [np.where(hit > 0, -1, c)]
        else:
            src = {k: [c] for k, c in _coords(x, shape).items()}
        operands.append(x)
        sources.append(src)
    if u is not None:
        src = {}
        for k, c in _coords(u, ushape).items():
            lo = np.asarray(jax.lax.scatter_min(np.full(shape, big), idx, c, **kw))
            hi = np.asarray(jax.lax.scatter_max(np.full(shape, -1, np.int32), idx, c, **kw))
            src[k] = [np.where(lo == big, -1, lo), hi]
        operands.append(u)
        sources.append(src)
    return [_coordinate_rule(op, operands, sources, "scatter")]
