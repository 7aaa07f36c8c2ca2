"""Rules for ops that are not sliding windows: pointwise, views, indexing, concatenation,
normalization, reductions, linear maps, attention, sampling.

Dims are torch dims of the arguments; the frontend knows which are spatial. Global along a dim
(``whole``) is exact for reductions and a sound over-approximation where the op's true support
depends on values (grid_sample, masked attention).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry import Window
from .torch_rules import (
                          CONSTANT,
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

# ---- elementwise ------------------------------------------------------------------------------

POINTWISE = (
    "abs", "absolute", "acos", "acosh", "add", "addcdiv", "addcmul", "asin", "asinh", "atan",
    "atan2", "atanh", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "ceil", "celu",
    "clamp", "clamp_max", "clamp_min", "clip", "clone", "contiguous", "copysign", "cos", "cosh",
    "deg2rad", "detach", "div", "elu", "eq", "erf", "erfc", "erfinv", "exp", "exp2", "expm1",
    "float_power", "floor", "floor_divide", "fmax", "fmin", "fmod", "frac", "ge", "gelu", "gt",
    "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "heaviside", "hypot", "isfinite",
    "isinf", "isnan", "le", "leaky_relu", "lerp", "lgamma", "lift_fresh_copy", "log", "log10",
    "log1p", "log2", "logaddexp", "logical_and", "logical_not", "logical_or", "logical_xor",
    "logit", "lt", "masked_fill", "maximum", "minimum", "mish", "mul", "nan_to_num", "ne", "neg",
    "negative", "positive", "pow", "prelu", "_prelu_kernel", "rad2deg", "reciprocal", "relu",
    "relu6", "remainder", "round", "rrelu", "rsqrt", "rsub", "selu", "sgn", "sigmoid", "sign",
    "silu", "sin", "sinh", "softplus", "softshrink", "sqrt", "square", "sub", "tan", "tanh",
    "threshold", "true_divide", "trunc", "where", "xlogy", "_to_copy", "to", "type_as",
    "_conj", "conj", "real", "nextafter",
)
_INPLACE = tuple(f"{n}_" for n in POINTWISE if not n.endswith("_"))


@RULES.register(*aten_ops(*POINTWISE, *_INPLACE))
def pointwise(call: OpCall) -> Any:
    """Elementwise ops with broadcasting (activations, arithmetic, comparisons, casts)."""
    return call.pointwise()


@RULES.register(*aten_ops("dropout.default", "feature_dropout.default", "alpha_dropout.default",
                          "feature_alpha_dropout.default", "native_dropout.default",
                          "dropout_.default", "feature_dropout_.default"))
def dropout(call: OpCall) -> Any:
    """Dropout (identity in eval mode; per-element or per-channel masks are pointwise)."""
    maps = {a.key: broadcast_maps(a.shape, call.out_shape) for a in call.inputs}
    if len(call.out_shapes) > 1:  # native_dropout: (output, mask)
        return PerOutput((maps, maps))
    return maps


@RULES.register(*aten_ops("zeros_like.default", "ones_like.default", "full_like.default",
                          "empty_like.default", "rand_like.default", "randn_like.default",
                          "randint_like.default", "new_zeros.default", "new_ones.default",
                          "new_full.default", "new_empty.default", "fill.Scalar",
                          "new_empty_strided.default", "empty_strided.default"))
def constant_like(call: OpCall) -> Any:
    """Ops that take only the shape of the input: the output does not depend on its values."""
    return CONSTANT


@RULES.register(*aten_ops("copy.default", "copy_.default"))
def copy(call: OpCall) -> Any:
    """``self.copy_(src)``: the result is ``src`` broadcast to self's shape."""
    src = call.arg("src")
    return {"self": None, **({"src": broadcast_maps(src.shape, call.out_shape)} if src else {})}


# ---- views ------------------------------------------------------------------------------------


@RULES.register(*aten_ops("view.default", "reshape.default", "_unsafe_view.default",
                          "flatten.using_ints", "unflatten.int", "squeeze.default",
                          "squeeze.dim", "squeeze.dims", "unsqueeze.default", "alias.default",
                          "_reshape_alias.default", "view_as.default", "reshape_as.default",
                          "squeeze_.dim", "unsqueeze_.default"))
def reshape(call: OpCall) -> Any:
    """Views that regroup dims: spatial axes that survive keep their identity, merged ones
    ride along inside the merged dim until an op reads along it otherwise (then global)."""
    return Relayout()


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


def _norm_slice(start: Any, end: Any, n: int) -> int:
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
    start = _norm_slice(call.args.get("start"), None, n)
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
        start = _norm_slice(call.args.get("start"), None, n)
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


# ---- normalization ----------------------------------------------------------------------------


def _global_except(call: OpCall, key: str, keep: set[int]) -> dict:
    a = call.arg(key)
    if a is None:
        return {}
    nd = len(a.shape)
    return call.along(key, {d: whole(d) for d in range(nd) if d not in keep})


@RULES.register(*aten_ops("batch_norm.default", "_native_batch_norm_legit_no_training.default",
                          "_native_batch_norm_legit.default", "_native_batch_norm_legit.no_stats",
                          "_native_batch_norm_legit_functional.default",
                          "native_batch_norm.default", "cudnn_batch_norm.default"))
def batch_norm(call: OpCall) -> Any:
    """Batch norm: pointwise in eval mode; in training mode the batch statistics mix every
    position (global). Call model.eval() (analyze does) for the usual meaning."""
    training = bool(call.args.get("training", False))
    if training:
        main = _global_except(call, "input", {1})
    else:
        main = call.along("input", {})
    if len(call.out_shapes) > 1:
        return PerOutput((main,) + (None,) * (len(call.out_shapes) - 1))
    return main


@RULES.register(*aten_ops("instance_norm.default"))
def instance_norm(call: OpCall) -> Any:
    """Instance norm: global over the spatial dims of each sample (pointwise when it uses
    running statistics)."""
    if not call.args.get("use_input_stats", True):
        return call.along("input", {})
    return _global_except(call, "input", {0, 1})


@RULES.register(*aten_ops("group_norm.default", "native_group_norm.default"))
def group_norm(call: OpCall) -> Any:
    """Group norm: global over channels-in-group and every spatial dim."""
    main = _global_except(call, "input", {0})
    if len(call.out_shapes) > 1:
        a = call.arg("input")
        assert a is not None
        stats = {a.key: (same(0), None)}
        return PerOutput((main, stats, stats))
    return main


@RULES.register(*aten_ops("layer_norm.default", "native_layer_norm.default", "rms_norm.default",
                          "_fused_rms_norm.default"))
def layer_norm(call: OpCall) -> Any:
    """Layer/RMS norm: global over the normalized (last) dims, pointwise over the others."""
    a = call.arg("input")
    if a is None:
        return {}
    nd = len(a.shape)
    k = len(call.args["normalized_shape"])
    main = call.along("input", {d: whole(d) for d in range(nd - k, nd)})
    if len(call.out_shapes) > 1:
        stats = []
        for shape in call.out_shapes[1:]:
            if shape is None or len(shape) != nd:
                stats.append(None)
                continue
            stats.append({a.key: tuple(same(d) if d < nd - k else whole(d) for d in range(nd))})
        return PerOutput((main, *stats))
    return main


# ---- reductions, softmax, cumulative ----------------------------------------------------------

_REDUCTIONS = (
    "sum.dim_IntList", "sum.default", "mean.dim", "mean.default", "amax.default", "amin.default",
    "max.dim", "min.dim", "max.default", "min.default", "argmax.default", "argmin.default",
    "var.correction", "var.dim", "var.default", "std.correction", "std.dim", "std.default",
    "var_mean.correction", "std_mean.correction", "prod.dim_int", "prod.default",
    "logsumexp.default", "norm.ScalarOpt_dim", "norm.Scalar", "norm.ScalarOpt_dtype",
    "linalg_vector_norm.default", "any.dim", "any.dims", "any.default", "all.dim", "all.dims",
    "all.default", "nansum.default", "nanmean.default", "count_nonzero.dim_IntList",
    "median.dim", "aminmax.default", "mode.default", "kthvalue.default")


@RULES.register(*aten_ops(*_REDUCTIONS))
def reduction(call: OpCall) -> Any:
    """Reductions over dims (sum, mean, max, var, norm, ...): global along the reduced dims."""
    x = call.inputs[0]
    nd = len(x.shape)
    dims = call.args.get("dim")
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        reduced = set(range(nd))
    elif isinstance(dims, (list, tuple)):
        reduced = {int(d) % max(nd, 1) for d in dims}
    else:
        reduced = {int(dims) % max(nd, 1)}
    keepdim = bool(call.args.get("keepdim", False))
    results = []
    for shape in call.out_shapes:
        if shape is None:
            results.append(None)
            continue
        maps = [whole(d) if d in reduced else same(d) for d in range(nd)
                if keepdim or d not in reduced]
        if len(maps) != len(shape):
            raise RuleError(f"reduction to shape {list(shape)} from {list(x.shape)}")
        results.append({x.key: tuple(maps)})
    return results[0] if len(results) == 1 else PerOutput(tuple(results))


@RULES.register(*aten_ops("softmax.int", "_softmax.default", "log_softmax.int",
                          "_log_softmax.default", "_safe_softmax.default"))
def softmax(call: OpCall) -> Any:
    """Softmax along a dim: global along it (pointwise when the dim is channels)."""
    x = call.inputs[0]
    d = int(call.args["dim"]) % len(x.shape)
    return call.along(x.key, {d: whole(d)})


@RULES.register(*aten_ops("cumsum.default", "cumprod.default", "logcumsumexp.default",
                          "cummax.default", "cummin.default"))
def cumulative(call: OpCall) -> Any:
    """Prefix scans: output i reads 0..i (a causal window of size n)."""
    x = call.inputs[0]
    d = int(call.args["dim"]) % len(x.shape)
    n = x.shape[d]
    result = call.along(x.key, {d: window(d, Window(kernel=n, pad=(n - 1, 0)), "cumulative")})
    if len(call.out_shapes) > 1:
        return PerOutput((result, result))
    return result


# ---- linear maps ------------------------------------------------------------------------------


def _matmul_maps(a: tuple[int, ...], b: tuple[int, ...], out: tuple[int, ...]) -> tuple:
    """Maps of both operands of ``a @ b`` (numpy matmul semantics, 1-D operands included)."""
    na, nb, no = len(a), len(b), len(out)
    if na == 1 and nb == 1:  # dot product
        return (), ()
    if na == 1:  # (k) @ (..., k, m) -> (..., m)
        return (None,) * no, tuple(same(o) for o in range(no - 1)) + (same(nb - 1),)
    if nb == 1:  # (..., n, k) @ (k) -> (..., n)
        return tuple(same(o) for o in range(no)), (None,) * no
    batch = out[:-2]
    ma = broadcast_maps(a[:-2], batch) + (same(na - 2), None)
    mb = broadcast_maps(b[:-2], batch) + (None, same(nb - 1))
    return ma, mb


_OPERANDS = {"matmul": ("self", "other", None), "mm": ("self", "mat2", None),
             "bmm": ("self", "mat2", None), "linear": ("input", "weight", "bias"),
             "addmm": ("mat1", "mat2", "self"), "baddbmm": ("batch1", "batch2", "self"),
             "addmv": ("mat", "vec", "self"), "mv": ("self", "vec", None),
             "dot": ("self", "tensor", None)}


@RULES.register(*aten_ops("matmul.default", "mm.default", "bmm.default", "linear.default",
                          "addmm.default", "baddbmm.default", "addmv.default", "mv.default",
                          "dot.default"))
def matmul(call: OpCall) -> Any:
    """Matrix products: rows of the left operand and columns of the right one are kept, the
    contracted dim is global (``linear`` over channels is pointwise over positions); an added
    term (bias) broadcasts."""
    name = call.op.overloadpacket.__name__
    out = call.out_shape
    left, right, added = _OPERANDS[name]
    ashape = call.shape(call.args[left])
    bshape = call.shape(call.args[right])
    if name == "linear":  # x @ weight.T
        bshape = tuple(reversed(bshape))
    ma, mb = _matmul_maps(ashape, bshape, out)
    result: dict[Any, Any] = {}
    if call.arg(left) is not None:
        result[left] = ma
    if call.arg(right) is not None:  # a weight computed from the input: read whole
        result[right] = (None,) * len(out) if name == "linear" else mb
    if added is not None and call.arg(added) is not None:
        result[added] = broadcast_maps(call.shape(call.args[added]), out)
    return result


@RULES.register(*aten_ops("einsum.default"))
def einsum(call: OpCall) -> Any:
    """einsum: output letters keep the operands' dims, contracted letters are global."""
    eq = str(call.args["equation"]).replace(" ", "")
    shapes = [call.shape(t) for t in call.args["tensors"]]
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise RuleError(f"equation {eq!r} does not match {len(shapes)} operands")
    ell = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes)
               if "..." in t), default=0)
    ell_letters = [chr(0x391 + i) for i in range(ell)]  # Greek capitals: not used by einsum

    def expand(term: str, nd: int) -> list[str]:
        if "..." not in term:
            return list(term)
        k = nd - len(term.replace("...", ""))
        head, tail = term.split("...")
        return list(head) + ell_letters[ell - k:] + list(tail)

    letters = [expand(t, len(s)) for t, s in zip(terms, shapes)]
    if arrow:
        out = expand(rhs, len(call.out_shape)) if "..." in rhs else list(rhs)
    else:
        counts: dict[str, int] = {}
        for ls in letters:
            for c in ls:
                counts[c] = counts.get(c, 0) + 1
        out = ell_letters + sorted(c for c, k in counts.items() if k == 1 and
                                   c not in ell_letters)
    result: dict[Any, Any] = {}
    for i, (ls, shape) in enumerate(zip(letters, shapes)):
        a = call.arg(("tensors", i))
        if a is None:
            continue
        if len(set(ls)) != len(ls):
            raise RuleError(f"einsum {eq!r} repeats an index within an operand (a diagonal)")
        maps: list[Any] = []
        for o, c in enumerate(out):
            if c in ls:
                d = ls.index(c)
                maps.append(default_map(d, shape[d], call.out_shape[o]))
            else:
                maps.append(None)
        result[a.key] = tuple(maps)
    return result


# ---- attention, sampling ----------------------------------------------------------------------


@RULES.register(*aten_ops("scaled_dot_product_attention.default"))
def attention(call: OpCall) -> Any:
    """Scaled dot-product attention: each query token reads every key/value token (global
    along the token dim; with is_causal, tokens 0..i). An attention mask is not used to narrow
    the support (a sound over-approximation)."""
    out = call.out_shape
    no = len(out)
    causal = bool(call.args.get("is_causal"))
    result: dict[Any, Any] = {}
    for key in ("query", "key", "value", "attn_mask"):
        a = call.arg(key)
        if a is None:
            continue
        nd = len(a.shape)
        lead = broadcast_maps_loose(a.shape[:-2], out[:-2])
        if key == "query":
            maps = lead + (same(nd - 2), whole(nd - 1))
        elif key == "attn_mask":
            maps = lead + (default_map(nd - 2, a.shape[-2], out[-2]), None)
        else:
            s = a.shape[-2]
            tokens = window(nd - 2, Window(kernel=s, pad=(s - 1, 0)), "causal attention") \
                if causal else whole(nd - 2)
            last = same(nd - 1) if key == "value" else None
            maps = lead + (tokens, last)
        assert len(maps) == no
        result[key] = maps
    return result


def broadcast_maps_loose(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple:
    """Like broadcast_maps, but dims of unequal size (grouped-query heads) are read whole."""
    lead = len(out_shape) - len(in_shape)
    return tuple(None if o < lead else default_map(o - lead, in_shape[o - lead], n)
                 for o, n in enumerate(out_shape))


@RULES.register(*aten_ops("grid_sampler.default", "grid_sampler_2d.default",
                          "grid_sampler_3d.default"))
def grid_sample(call: OpCall) -> Any:
    """grid_sample: where each output samples depends on the grid's values, so every output
    position is taken to depend on the whole input (global); output positions follow the
    grid's positions when the grid depends on the input (spatial transformers)."""
    out = call.out_shape
    result: dict[Any, Any] = {}
    x = call.arg("input")
    if x is not None:
        result["input"] = (same(0), same(1)) + (None,) * (len(out) - 2)
    g = call.arg("grid")
    if g is not None:
        result["grid"] = (same(0), None) + tuple(same(d) for d in range(1, len(out) - 1))
    return result
