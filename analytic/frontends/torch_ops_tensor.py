"""Rules for elementwise ops, normalization, reductions, linear maps, attention, sampling.

Dims are torch dims of the arguments; the frontend knows which are spatial. Global along a dim
(``whole``) is exact for reductions and a sound over-approximation where the op's true support
depends on values (grid_sample, masked attention).
"""

from __future__ import annotations

from typing import Any

from ..geometry import Window
from .torch_rules import (
    CONSTANT,
    RULES,
    OpCall,
    PerOutput,
    RuleError,
    aten_ops,
    broadcast_maps,
    default_map,
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
    """Reductions over dims (sum, mean, max, var, norm, ...): global along the reduced dims
    (a kept dim of size 1 is read in place, as adaptive pooling to 1 of a size-1 dim is)."""
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
        maps = [whole(d) if d in reduced and not (keepdim and x.shape[d] == 1) else same(d)
                for d in range(nd) if keepdim or d not in reduced]
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
