"""Rules for lax primitives that compute: pointwise ops, layout, reductions, windows, matmuls,
and nested jaxprs. Data movement (pad, slice, gather, ...) is in ``jax_moves``.
"""

from __future__ import annotations

import numpy as np

from . import jax_values as vals
from .jax_maps import as_read, dilated_window, from_sets
from .jax_table import RULES, Op
from .jax_values import Const, Data, Value, Weight

# Every position reads the same position of each input (numpy broadcasting of scalars).
ELEMENTWISE = (
    "abs", "acos", "acosh", "add", "add_any", "and", "asin", "asinh", "atan", "atan2", "atanh",
    "bessel_i0e", "bessel_i1e", "cbrt", "ceil", "clamp", "clz", "complex", "conj", "cos",
    "cosh", "digamma", "div", "eq", "erf", "erf_inv", "erfc", "exp", "exp2", "expm1", "floor",
    "ge", "gt", "igamma", "igamma_grad_a", "igammac", "imag", "integer_pow", "is_finite", "le",
    "lgamma", "log", "log1p", "logistic", "lt", "max", "min", "mul", "mulhi", "ne", "neg",
    "nextafter", "not", "or", "polygamma", "population_count", "pow", "real",
    "reduce_precision", "regularized_incomplete_beta", "rem", "round", "rsqrt", "select_n",
    "shift_left", "shift_right_arithmetic", "shift_right_logical", "sign", "sin", "sinh",
    "sqrt", "square", "sub", "tan", "tanh", "xor", "zeta",
)

# The value itself passes through (dtype, placement, or autodiff markers only).
PASS_THROUGH = ("convert_element_type", "copy", "copy_p", "stop_gradient", "device_put",
                "optimization_barrier", "sharding_constraint", "name")


@RULES.register(*ELEMENTWISE)
def elementwise(op: Op) -> list[Value]:
    """pointwise: each position reads the same position of every input"""
    return [op.elementwise()]


@RULES.register(*PASS_THROUGH)
def pass_through(op: Op) -> list[Value]:
    """identity: the output is the input (dtype, device or autodiff marker)"""
    n = len(op.eqn.outvars)
    return list(op.inputs[:n])


# ---- layout: re-factor the same node -------------------------------------------------------

@RULES.register("transpose")
def transpose(op: Op) -> list[Value]:
    """permutes dimensions; spatial axes follow"""
    x = op.inputs[0]
    assert isinstance(x, Data)
    return [vals.transpose(x, op.params["permutation"])]


@RULES.register("squeeze")
def squeeze(op: Op) -> list[Value]:
    """drops size-1 dimensions; a size-1 spatial axis stays as a phantom axis"""
    x = op.inputs[0]
    assert isinstance(x, Data)
    return [vals.squeeze(x, op.params["dimensions"])]


@RULES.register("broadcast_in_dim")
def broadcast_in_dim(op: Op) -> list[Value]:
    """new or stretched size-1 dimensions are not spatial; kept dimensions keep their axes"""
    x = op.inputs[0]
    assert isinstance(x, Data)
    return [vals.broadcast_in_dim(x, op.params["shape"], op.params["broadcast_dimensions"])]


@RULES.register("reshape")
def reshape(op: Op) -> list[Value]:
    """re-factors dimensions: merges and splits of spatial axes are tracked exactly"""
    x = op.inputs[0]
    assert isinstance(x, Data)
    if op.params.get("dimensions") is not None:
        x = vals.transpose(x, op.params["dimensions"])
    new = op.params["new_sizes"]
    out = vals.reshape(x, new)
    if out is None:
        out = vals.reshape(op.builder.simple(x, op.site), new)
    return [out] if out is not None else op.everything()


# ---- reductions ----------------------------------------------------------------------------

def _reduce(op: Op, axes, n_arrays: int) -> list[Value]:
    """Reduced spatial dims are global, except a size-1 one: it is read in place (its one
    position need not see the whole input), as the PyTorch frontend and the spec's ``global``
    read it. Each reduced spatial axis stays on the node as a size-1 axis (reading the whole
    axis, or its one pixel), so that ``keepdims`` puts it back on its dimension and a later
    window along that dimension (padding a pooled map) applies to it, as in PyTorch."""
    axes = {int(a) for a in axes}
    xs = [op.data(i) for i in range(len(op.inputs))]
    shape = op.out_shapes[0]
    in_shape = op.in_shape(0)
    keep = [d for d in range(len(in_shape)) if d not in axes]
    operands, reads, pinned = [], [], []
    for i, x in enumerate(xs):
        if x is None:
            continue
        operands.append(x)
        reads.append([(d, None) for d in keep] if i < n_arrays else [None] * len(shape))
        if i < n_arrays:
            pinned += [(len(operands) - 1, d, np.arange(in_shape[d])[None, :])
                       for d in sorted(axes)
                       if x.axis(d) is not None and op.builder._simple_dim(x, d)]
    node = op.emit(operands, shape, reads, pinned, kind="global")
    if pinned:  # where the size-1 axes were, for a keepdims broadcast right after
        b = op.builder
        origins = b.origin[node.node]
        held = set(node.axes())
        slots = []
        for i, d, _ in pinned:
            x = operands[i]
            o = b.origin[x.node][x.axis(d)]
            j = next((j for j in range(len(origins)) if origins[j] == o and j not in held
                      and j not in {s[0] for s in slots}), None)
            if j is not None:
                slots.append((j, d, len(in_shape)))
        node = Data(node.node, node.dims, tuple(slots))
    return [node] * len(op.eqn.outvars)


@RULES.register("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and",
                "reduce_or", "reduce_xor", "argmax", "argmin")
def reduction(op: Op) -> list[Value]:
    """reduced spatial axes are global; the others pass through"""
    return _reduce(op, op.params["axes"], 1)


@RULES.register("reduce")
def reduce_generic(op: Op) -> list[Value]:
    """variadic reduce with a computation: like reduce_sum over ``dimensions``"""
    return _reduce(op, op.params["dimensions"], len(op.inputs) // 2)


# ---- sliding windows -----------------------------------------------------------------------

@RULES.register("conv_general_dilated")
def conv_general_dilated(op: Op) -> list[Value]:
    """window per spatial dim: window_strides, padding, rhs_dilation; lhs_dilation -> reads"""
    p = op.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    x = op.data(0)
    w = op.data(1)  # a data-dependent kernel: every output reads all of it
    out = op.out_shapes[0]
    rhs_shape = op.in_shape(1)
    reads: list = [None] * len(out)
    if x is not None:
        if p.get("batch_group_count", 1) == 1:
            reads[out_spec[0]] = (lhs_spec[0], None)
        for i, (ld, rd, od) in enumerate(zip(lhs_spec[2:], rhs_spec[2:], out_spec[2:])):
            reads[od] = (ld, dilated_window(x.shape[ld], out[od], rhs_shape[rd],
                                            p["window_strides"][i], p["rhs_dilation"][i],
                                            p["padding"][i], p["lhs_dilation"][i]))
    operands = [v for v in (x, w) if v is not None]
    rows = ([reads] if x is not None else []) + ([[None] * len(out)] if w is not None else [])
    kind = "transposed" if any(d > 1 for d in p["lhs_dilation"]) else "window"
    return [op.emit(operands, out, rows, kind=kind)]


def _window_reads(op: Op, x: Data, out) -> list:
    p = op.params
    return [(k, dilated_window(x.shape[k], out[k], p["window_dimensions"][k],
                               p["window_strides"][k], p["window_dilation"][k], p["padding"][k],
                               p["base_dilation"][k])) for k in range(len(out))]


@RULES.register("reduce_window_sum", "reduce_window_max", "reduce_window_min")
def reduce_window(op: Op) -> list[Value]:
    """pooling: a window per dim (window_dimensions, strides, padding, base/window dilation)"""
    x = op.data(0)
    assert x is not None
    out = op.out_shapes[0]
    kind = "transposed" if any(d > 1 for d in op.params["base_dilation"]) else "window"
    return [op.emit([x], out, [_window_reads(op, x, out)], kind=kind)]


@RULES.register("reduce_window")
def reduce_window_generic(op: Op) -> list[Value]:
    """variadic reduce_window with a computation: windows as reduce_window_sum"""
    n = len(op.inputs) // 2
    out = op.out_shapes[0]
    operands, rows = [], []
    for i in range(len(op.inputs)):
        x = op.data(i)
        if x is not None:
            operands.append(x)
            rows.append(_window_reads(op, x, out) if i < n else [None] * len(out))
    node = op.emit(operands, out, rows)
    return [node] * len(op.eqn.outvars)


# ---- matrix products -----------------------------------------------------------------------

@RULES.register("dot_general")
def dot_general(op: Op) -> list[Value]:
    """contracting channels: pointwise; a spatial axis with a constant matrix: its nonzero
    pattern; with a weight or data: global"""
    (lc, rc), (lb, rb) = op.params["dimension_numbers"]
    out = op.out_shapes[0]
    ranks = (len(op.in_shape(0)), len(op.in_shape(1)))
    contract, batch = (list(lc), list(rc)), (list(lb), list(rb))
    free = [[d for d in range(ranks[s]) if d not in contract[s] and d not in batch[s]]
            for s in (0, 1)]
    start = (len(lb), len(lb) + len(free[0]))
    xs = [op.data(0), op.data(1)]
    operands, rows, pinned = [], [], []
    for s in (0, 1):
        x = xs[s]
        if x is None:
            continue
        row: list = [None] * len(out)
        for i, d in enumerate(batch[s]):
            row[i] = (d, None)
        for j, d in enumerate(free[s]):
            row[start[s] + j] = (d, None)
        other = op.inputs[1 - s]
        spatial = [i for i, d in enumerate(contract[s]) if x.axis(d) is not None]
        if len(spatial) == 1 and isinstance(other, Const):
            i = spatial[0]
            m = np.asarray(other.value) != 0
            md = contract[1 - s][i]
            mfree = free[1 - s]
            rest = tuple(d for d in range(m.ndim) if d != md and d not in mfree)
            m = m.any(axis=rest) if rest else m  # union over other contractions and batches
            kept = [d for d in range(m.ndim + len(rest)) if d not in rest]
            m = np.moveaxis(m, kept.index(md), 0)  # (n_contract, *mfree)
            if not mfree:
                pinned.append((len(operands), contract[s][i], np.flatnonzero(m.reshape(-1))))
            else:
                sizes = [m.shape[1 + j] for j in range(len(mfree))]
                j = int(np.argmax(sizes))
                mm = np.moveaxis(m, 1 + j, 1).reshape(m.shape[0], sizes[j], -1).any(axis=2)
                rows_j = [np.flatnonzero(mm[:, o]) for o in range(sizes[j])]
                reads = as_read(from_sets(rows_j), x.shape[contract[s][i]])
                row[start[1 - s] + j] = (contract[s][i], reads)
        operands.append(x)
        rows.append(row)
    return [op.emit(operands, out, rows, pinned, kind="linear map")]


# ---- nested jaxprs -------------------------------------------------------------------------

@RULES.register("jit", "pjit", "closed_call", "call", "remat2", "checkpoint",
                "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr")
def call(op: Op) -> list[Value]:
    """a nested jaxpr (jit, custom_jvp/vjp, remat, closed_call): analysed inside"""
    p = op.params
    inner = p.get("jaxpr", p.get("call_jaxpr", p.get("fun_jaxpr")))
    return op.capture.run_closed(inner, op.inputs, op)


@RULES.register("cond")
def cond(op: Op) -> list[Value]:
    """a constant predicate picks its branch; a data-dependent one unions all branches"""
    branches = op.params["branches"]
    index = op.inputs[0]
    args = op.inputs[1:]
    if isinstance(index, Const):
        i = int(np.clip(int(np.asarray(index.value)), 0, len(branches) - 1))
        return op.capture.run_closed(branches[i], args, op)
    results = [op.capture.run_closed(b, args, op) for b in branches]
    outs: list[Value] = []
    for k, shape in enumerate(op.out_shapes):
        xs = [r[k] for r in results if isinstance(r[k], Data)]
        if isinstance(index, Data):
            xs.append(index)
        # constant branches under an unknown (weight) predicate: unknown, input-independent
        outs.append(op.builder.elementwise(op.site, xs, shape) if xs else Weight(shape))
    return outs


@RULES.register("debug_callback", "debug_print")
def side_effect(op: Op) -> list[Value]:
    """a host callback without results (jax.debug.print): nothing to analyse"""
    return [Weight(shape) for shape in op.out_shapes]


@RULES.register("pure_callback", "io_callback")
def host_callback(op: Op) -> list[Value]:
    """arbitrary host code: every output reads all of every input"""
    return op.everything()
