"""Rules for ops that move data along dims: views, tiling, flips, indexing, concatenation,
splitting, slice assignment, unfold.

Dims are torch dims of the arguments; the frontend knows which are spatial.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry import Window
from .torch_rules import (
    RULES,
    OpCall,
    PerOutput,
    Relayout,
    RuleError,
    aten_ops,
    broadcast_maps,
    default_map,
    reads,
    same,
    whole,
    window,
)

# ---- views ------------------------------------------------------------------------------------


@RULES.register(*aten_ops("view.default", "reshape.default", "_unsafe_view.default",
                          "flatten.using_ints", "unflatten.int", "alias.default",
                          "_reshape_alias.default", "view_as.default", "reshape_as.default"))
def reshape(call: OpCall) -> Any:
    """Views that regroup dims: spatial axes that survive keep their identity, merged ones
    ride along inside the merged dim until an op reads along it otherwise (then global)."""
    x = call.inputs[0]
    if tuple(x.shape) == tuple(call.out_shape):
        return Relayout(tuple(range(len(x.shape))))  # alias, a view to the same shape
    return Relayout()


@RULES.register(*aten_ops("squeeze.default", "squeeze.dim", "squeeze.dims", "squeeze_.dim",
                          "squeeze_.dims", "squeeze_.default"))
def squeeze(call: OpCall) -> Any:
    """Drop size-1 dims (a 1-pixel spatial axis on one becomes hidden, as after a select)."""
    x = call.inputs[0]
    nd = len(x.shape)
    if "dim" in call.args:
        named = [call.args["dim"]]
    elif "dims" in call.args:
        named = list(call.args["dims"])
    else:
        named = list(range(nd))
    drop = {int(d) % nd for d in named if x.shape[int(d) % nd] == 1} if nd else set()
    return Relayout(tuple(d for d in range(nd) if d not in drop))


@RULES.register(*aten_ops("unsqueeze.default", "unsqueeze_.default"))
def unsqueeze(call: OpCall) -> Any:
    """Insert a new size-1 (non-spatial) dim."""
    nd = len(call.out_shape)
    d = int(call.args["dim"]) % nd
    return Relayout(tuple(None if o == d else (o if o < d else o - 1) for o in range(nd)))


@RULES.register(*aten_ops("permute.default", "transpose.int", "t.default", "movedim.int",
                          "swapaxes.default", "swapdims.default", "numpy_T.default"))
def permute(call: OpCall) -> Any:
    """Views that reorder dims (spatial axes keep their identity)."""
    x = call.inputs[0]
    nd = len(x.shape)
    name = call.op.overloadpacket.__name__
    order = list(range(nd))
    if name == "permute":
        order = [int(d) % nd for d in call.args["dims"]]
    elif name in ("transpose", "swapaxes", "swapdims"):
        keys = ("dim0", "dim1") if name == "transpose" else (("axis0", "axis1") if
                                                             name == "swapaxes" else
                                                             ("dim0", "dim1"))
        a, b = (int(call.args[k]) % nd for k in keys)
        order[a], order[b] = order[b], order[a]
    elif name in ("t", "numpy_T"):
        order = order[::-1]
    elif name == "movedim":
        src, dst = int(call.args["source"]) % nd, int(call.args["destination"]) % nd
        order.pop(src)
        order.insert(dst, src)
    return Relayout(tuple(order))


@RULES.register(*aten_ops("expand.default", "expand_copy.default", "broadcast_to.default"))
def expand(call: OpCall) -> Any:
    """Broadcast size-1 dims (and new leading dims) to a larger shape."""
    x = call.inputs[0]
    return {x.key: broadcast_maps(x.shape, call.out_shape)}


@RULES.register(*aten_ops("expand_as.default"))
def expand_as(call: OpCall) -> Any:
    """``x.expand_as(other)``: broadcast to other's shape (other's values are not read)."""
    x = call.arg("self")
    return {"other": None, **({"self": broadcast_maps(x.shape, call.out_shape)} if x else {})}


@RULES.register(*aten_ops("repeat.default", "tile.default"))
def repeat(call: OpCall) -> Any:
    """Tiling: output o reads input o % n along each dim."""
    x = call.inputs[0]
    lead = len(call.out_shape) - len(x.shape)
    maps: list[Any] = []
    for o, n_out in enumerate(call.out_shape):
        d = o - lead
        if d < 0:
            maps.append(None)
        elif x.shape[d] == n_out:
            maps.append(same(d))
        else:
            maps.append(reads(d, (np.arange(n_out) % x.shape[d])[:, None], "tile"))
    return {x.key: tuple(maps)}


@RULES.register(*aten_ops("flip.default"))
def flip(call: OpCall) -> Any:
    """Reversal along dims: output o reads input n-1-o."""
    x = call.inputs[0]
    nd = len(x.shape)
    flipped = {int(d) % nd for d in call.args["dims"]}
    return call.along(x.key, {d: reads(d, (x.shape[d] - 1 - np.arange(x.shape[d]))[:, None],
                                       "flip") for d in flipped})


@RULES.register(*aten_ops("roll.default"))
def roll(call: OpCall) -> Any:
    """Cyclic shift: output o reads (o - shift) mod n; without dims torch rolls the flattened
    tensor, which is global along every dim."""
    x = call.inputs[0]
    nd = len(x.shape)
    shifts, dims = list(call.args["shifts"]), list(call.args.get("dims") or [])
    if not dims:
        return call.along(x.key, {d: whole(d) for d in range(nd)})
    return call.along(x.key, {int(d) % nd: reads(
        int(d) % nd, ((np.arange(x.shape[int(d) % nd]) - int(s)) % x.shape[int(d) % nd])[:, None],
        "roll") for s, d in zip(shifts, dims)})


# ---- indexing ---------------------------------------------------------------------------------


def _norm_start(start: Any, n: int) -> int:
    start = 0 if start is None else int(start)
    if start < 0:
        start += n
    return min(max(start, 0), n)


@RULES.register(*aten_ops("slice.Tensor", "narrow.default", "slice_copy.Tensor"))
def slice_(call: OpCall) -> Any:
    """Slicing along one dim: output i reads start + i*step (a stride-``step`` window with a
    negative pad, so r, S, P stay defined)."""
    x = call.inputs[0]
    nd = len(x.shape)
    d = int(call.args.get("dim") or 0) % nd
    n, m = x.shape[d], call.out_shape[d]
    step = int(call.args.get("step") or 1)
    start = _norm_start(call.args.get("start"), n)
    w = Window(kernel=1, stride=step, pad=(-start, (m - 1) * step + 1 - n + start))
    return call.along(x.key, {d: window(d, w, "slice")})


@RULES.register(*aten_ops("select.int", "select_copy.int"))
def select(call: OpCall) -> Any:
    """``x[..., i, ...]``: the dim disappears; the IR keeps it as a hidden size-1 axis that
    reads position i (so later broadcasting meets the right pixel)."""
    x = call.inputs[0]
    nd = len(x.shape)
    d = int(call.args["dim"]) % nd
    i = int(call.args["index"]) % x.shape[d]
    maps = [same(o if o < d else o + 1) for o in range(nd - 1)]
    if x.shape[d] == 1:  # index 0 of a size-1 dim: the identity (r, S, P stay defined)
        return {x.key: (*maps, window(d, Window(), "select"))}
    return {x.key: (*maps, reads(d, np.array([[i]]), "select"))}


@RULES.register(*aten_ops("index.Tensor", "index_select.default", "_unsafe_index.Tensor"))
def index(call: OpCall) -> Any:
    """Indexing one dim with a constant 1-D index tensor: output o reads idx[o]."""
    x = call.arg("self")
    if x is None:
        raise RuleError("the indexed tensor does not depend on the input")
    nd = len(x.shape)
    if "indices" in call.args:
        given = [(d, t) for d, t in enumerate(call.args["indices"]) if t is not None]
        if len(given) != 1:
            raise RuleError(f"indexing with {len(given)} index tensors")
        d, t = given[0]
    else:
        d, t = int(call.args["dim"]) % nd, call.args["index"]
    if any(a.node is t for a in call.inputs):
        raise RuleError("index tensor depends on the input (data-dependent gather)")
    idx = np.asarray(call.value(t).cpu())
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    if idx.ndim != 1:
        raise RuleError(f"a {idx.ndim}-D index tensor")
    idx = idx.astype(np.int64) % x.shape[d]
    return call.along(x.key, {d: reads(d, idx[:, None], "index")})


@RULES.register(*aten_ops("cat.default", "concat.default", "concatenate.default"))
def cat(call: OpCall) -> Any:
    """Concatenation: input k fills [offset_k, offset_k + n_k) along the dim (a window with
    padding, so a cat with one input-dependent part is a pad); other dims are shared."""
    tensors = call.args["tensors"]
    nd = len(call.out_shape)
    d = int(call.args.get("dim") or 0) % nd
    out: dict[Any, Any] = {}
    offset = 0
    for i, t in enumerate(tensors):
        shape = call.shape(t)
        if len(shape) == 1 and shape[0] == 0 and nd > 1:  # legacy empty tensors are skipped
            continue
        n = shape[d]
        a = call.arg(("tensors", i))
        if a is not None:
            w = Window(pad=(offset, call.out_shape[d] - offset - n))
            out[a.key] = tuple(window(o, w, "cat") if o == d else
                               default_map(o, shape[o], call.out_shape[o]) for o in range(nd))
        offset += n
    return out


@RULES.register(*aten_ops("stack.default"))
def stack(call: OpCall) -> Any:
    """Stacking along a new (non-spatial) dim."""
    nd = len(call.out_shape)
    d = int(call.args.get("dim") or 0) % nd
    out = {}
    for a in call.inputs:
        out[a.key] = tuple(None if o == d else same(o if o < d else o - 1) for o in range(nd))
    return out


@RULES.register(*aten_ops("split.Tensor", "split_with_sizes.default", "chunk.default",
                          "unbind.int", "tensor_split.sections", "tensor_split.indices",
                          "split_copy.Tensor", "split_with_sizes_copy.default",
                          "unsafe_split.Tensor", "unsafe_chunk.default"))
def split(call: OpCall) -> Any:
    """Pieces along one dim, each a slice (unbind: each a select)."""
    x = call.inputs[0]
    nd = len(x.shape)
    d = int(call.args.get("dim") or 0) % nd
    results = []
    offset = 0
    for shape in call.out_shapes:
        assert shape is not None
        if len(shape) == nd - 1:  # unbind
            maps = [same(o if o < d else o + 1) for o in range(nd - 1)]
            results.append({x.key: (*maps, reads(d, np.array([[offset]]), "select"))})
            offset += 1
            continue
        m = shape[d]
        w = Window(kernel=1, pad=(-offset, offset + m - x.shape[d]))
        results.append({x.key: tuple(window(o, w, "slice") if o == d else same(o)
                                     for o in range(nd))})
        offset += m
    return PerOutput(tuple(results))


@RULES.register(*aten_ops("slice_scatter.default", "select_scatter.default"))
def scatter_view(call: OpCall) -> Any:
    """``out = self; out[slice] = src`` (functionalized slice/select assignment): positions in
    the slice read src, the others read self."""
    nd = len(call.out_shape)
    d = int(call.args.get("dim") or 0) % nd
    n = call.out_shape[d]
    if "index" in call.args:  # select_scatter
        start, step, m = int(call.args["index"]) % n, 1, 1
    else:
        start = _norm_start(call.args.get("start"), n)
        step = int(call.args.get("step") or 1)
        m = len(range(start, n if call.args.get("end") is None else
                      min(max(int(call.args["end"]) + (n if int(call.args["end"]) < 0 else 0),
                              0), n), step))
    inside = np.zeros(n, dtype=bool)
    inside[start:start + m * step:step] = True
    out: dict[Any, Any] = {}
    if call.arg("self") is not None:
        own = np.where(inside, -1, np.arange(n))[:, None]
        out["self"] = tuple(reads(d, own, "scatter") if o == d else same(o) for o in range(nd))
    src = call.arg("src")
    if src is not None:
        rows = np.full(n, -1)
        rows[inside] = np.arange(m)
        if len(src.shape) == nd:
            out["src"] = tuple(reads(d, rows[:, None], "scatter") if o == d else
                               default_map(o, src.shape[o], call.out_shape[o])
                               for o in range(nd))
        else:  # select_scatter: src lacks the dim; read along it wherever (over-approx.)
            out["src"] = tuple(None if o == d else same(o if o < d else o - 1)
                               for o in range(nd))
    return out


@RULES.register(*aten_ops("unfold.default"))
def unfold(call: OpCall) -> Any:
    """``x.unfold(dim, size, step)``: windows along dim; the window contents go to a new last
    (non-spatial) dim."""
    x = call.inputs[0]
    nd = len(x.shape)
    d = int(call.args["dimension"]) % nd
    size, step = int(call.args["size"]), int(call.args["step"])
    m = call.out_shape[d]
    w = Window(kernel=size, stride=step, pad=(0, (m - 1) * step + size - x.shape[d]))
    maps = [window(o, w) if o == d else same(o) for o in range(nd)]
    return {x.key: (*maps, None)}


@RULES.register(*aten_ops("glu.default"))
def glu(call: OpCall) -> Any:
    """GLU halves a dim: output i reads i and i + n/2."""
    x = call.inputs[0]
    nd = len(x.shape)
    d = int(call.args.get("dim", -1)) % nd
    half = call.out_shape[d]
    idx = np.stack([np.arange(half), np.arange(half) + half], axis=1)
    return call.along(x.key, {d: reads(d, idx, "glu")})


