"""One case per JAX frontend rule, each held against the jax.vjp gradient-support oracle.

Every case is a small function of one array; its exact regions (``analyze(...).regions()``)
must equal, position by position, the bounding box of the nonzero input gradient computed by
``tests/jax_oracle.py`` (float64, positive inputs and weights, selections summed). Cases
marked ``exact=False`` are ops whose dependency is wider than their gradient (sorting, argmax,
data-dependent branches) or where the analysis is documented as an over-approximation: there
the oracle's box must lie inside the analytic one. A meta-test checks that every registered
rule is exercised by some case's jaxpr.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.ad_checkpoint import checkpoint_name
from jax_oracle import support_boxes

from analytic import analyze
from analytic.frontends import jax_rules
from analytic.frontends.jax_table import RULES

RNG = np.random.default_rng(0)


def pos(*shape):
    """Positive constant weights (float64: the oracle runs in x64)."""
    return jnp.asarray(RNG.uniform(0.5, 1.5, size=shape))


def conv(x, w, strides=(1, 1), padding="SAME", **kw):
    return lax.conv_general_dilated(x, w, strides, padding,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"), **kw)


W3 = pos(3, 3, 2, 2)
W2 = pos(2, 2, 2, 2)
W1 = pos(1, 1, 2, 2)


@dataclass(frozen=True)
class Case:
    fn: object
    shape: tuple[int, ...]
    layout: str = "NHWC"
    out_layout: str | None = None
    exact: bool = True


def _attention(x):
    n, h, w, c = x.shape
    t = x.reshape(n, h * w, c)
    s = jnp.einsum("ntc,nsc->nts", t, t)
    s = jax.nn.softmax(s, axis=-1)
    return jnp.einsum("nts,nsc->ntc", s, t).reshape(n, h, w, c)


def _pixel_shuffle(x):  # (1, 4, 5, 8) -> (1, 8, 10, 2), then a conv to read it
    n, h, w, c = x.shape
    y = x.reshape(n, h, w, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w,
                                                                             c // 4)
    return conv(y, W2, padding="VALID")


def _space_to_depth(x):  # (1, 8, 6, 2) -> (1, 4, 3, 8)
    n, h, w, c = x.shape
    y = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        n, h // 2, w // 2, 4 * c)
    return conv(y, pos(1, 1, 8, 2), padding="VALID")


def _flatten_roundtrip(x):
    n, h, w, c = x.shape
    t = jax.nn.gelu(x.reshape(n, h * w, c)) + 1.0
    return conv(t.reshape(n, h, w, c), W3)


def _cls_tokens(x):
    n, h, w, c = x.shape
    t = x.reshape(n, h * w, c)
    t = jnp.concatenate([jnp.ones((n, 1, c), x.dtype), t], axis=1)
    return t[:, 1:] * 2.0


def _custom_vjp():
    @jax.custom_vjp
    def f(x):
        return jnp.exp(x)

    f.defvjp(lambda x: (jnp.exp(x), x), lambda r, g: (g * jnp.exp(r),))
    return lambda x: f(conv(x, W3))


def _grad_inside(x):
    w0 = jnp.ones(x.shape, x.dtype)
    return jax.grad(lambda w: jnp.sum(jnp.sin(w * x)) + jnp.sum(w * x * x))(w0)


M_BAND = np.zeros((7, 5))
for _i in range(5):
    M_BAND[max(0, _i - 1): _i + 2, _i] = 1.0 + _i  # column i reads rows i-1..i+1


CASES = {
    # convolutions
    "conv_same_stride2": Case(lambda x: conv(x, W3, (2, 2)), (1, 9, 10, 2)),
    "conv_rhs_dilation": Case(lambda x: conv(x, W3, padding=((2, 2), (1, 3)),
                                             rhs_dilation=(2, 2)), (1, 8, 7, 2)),
    "conv_lhs_dilation": Case(lambda x: conv(x, W3, padding=((1, 2), (2, 1)),
                                             lhs_dilation=(2, 3)), (1, 5, 4, 2)),
    "conv_transpose": Case(lambda x: lax.conv_transpose(
        x, W3, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")), (1, 4, 5, 2)),
    "conv_nchw": Case(lambda x: lax.conv_general_dilated(
        x, pos(2, 2, 2, 3), (1, 2), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")),
        (1, 2, 6, 7), "NCHW"),
    "conv_grouped": Case(lambda x: conv(x, pos(3, 3, 1, 4), (1, 2), feature_group_count=2),
                         (1, 6, 7, 2)),
    "conv_negative_pad": Case(lambda x: conv(x, W3, padding=((-1, 1), (0, -2))), (1, 7, 8, 2)),
    "conv_1d": Case(lambda x: lax.conv_general_dilated(
        x, pos(5, 2, 3), (3,), ((1, 2),), dimension_numbers=("NWC", "WIO", "NWC")),
        (1, 13, 2), "NWC"),
    "conv_3d": Case(lambda x: lax.conv_general_dilated(
        x, pos(3, 1, 2, 1, 2), (1, 2, 1), "SAME", dimension_numbers=("NDHWC", "DHWIO", "NDHWC")),
        (1, 4, 5, 6, 1), "NDHWC"),
    "conv_data_kernel": Case(lambda x: conv(x, jnp.broadcast_to(jnp.mean(x), (3, 3, 2, 2))),
                             (1, 5, 6, 2)),
    # pooling
    "max_pool_same": Case(lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1),
                                                      (1, 2, 2, 1), "SAME"), (1, 9, 8, 2)),
    "avg_pool": Case(lambda x: lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1),
                                                 "VALID") / 4, (1, 7, 8, 2)),
    "min_pool_dilated": Case(lambda x: lax.reduce_window(
        x, jnp.inf, lax.min, (1, 2, 3, 1), (1, 1, 2, 1), ((0, 0), (1, 1), (2, 0), (0, 0)),
        window_dilation=(1, 2, 2, 1)), (1, 7, 8, 2)),
    "pool_base_dilation": Case(lambda x: lax.reduce_window(
        x, 0.0, lax.add, (1, 3, 2, 1), (1, 1, 2, 1), ((0, 0), (1, 1), (0, 1), (0, 0)),
        base_dilation=(1, 2, 3, 1)), (1, 4, 5, 2)),
    "reduce_window_generic": Case(lambda x: lax.reduce_window(
        x, 1.0, lax.mul, (1, 2, 3, 1), (1, 2, 1, 1), "VALID"), (1, 7, 6, 2)),
    # moves
    "pad_interior_crop": Case(lambda x: lax.pad(x, 0.0, ((0, 0, 0), (2, 1, 1), (-1, 2, 0),
                                                         (0, 0, 0))), (1, 4, 6, 2)),
    "pad_reflect": Case(lambda x: jnp.pad(x, ((0, 0), (2, 3), (1, 1), (0, 0)), "reflect"),
                        (1, 6, 5, 2)),
    "pad_edge": Case(lambda x: jnp.pad(x, ((0, 0), (2, 1), (0, 2), (0, 0)), "edge"),
                     (1, 4, 5, 2)),
    "pad_wrap": Case(lambda x: jnp.pad(x, ((0, 0), (3, 1), (0, 2), (0, 0)), "wrap"),
                     (1, 4, 5, 2)),
    "slice_strided": Case(lambda x: x[:, 1:8:3, ::2], (1, 9, 7, 2)),
    "index_int": Case(lambda x: conv(x, W3)[:, 3], (1, 6, 5, 2), out_layout="NWC"),
    "dynamic_slice": Case(lambda x: lax.dynamic_slice(x, (0, 2, 7, 0), (1, 3, 4, 2)),
                          (1, 6, 8, 2)),
    "dynamic_update_slice_rows": Case(lambda x: lax.dynamic_update_slice(
        x, conv(x, W3)[:, :2] * 2, (0, 3, 0, 0)), (1, 6, 5, 2)),
    "dynamic_update_slice_box": Case(lambda x: lax.dynamic_update_slice(
        x, x[:, :2, :2] * 2, (0, 3, 2, 0)), (1, 6, 5, 2), exact=False),
    "rev": Case(lambda x: jnp.flip(conv(x, W3, (2, 1)), 1), (1, 7, 5, 2)),
    "concatenate": Case(lambda x: jnp.concatenate([conv(x[:, :3], W3), x[:, 2:] * 2], axis=1),
                        (1, 6, 5, 2)),
    "split": Case(lambda x: jnp.split(conv(x, W3), [3], axis=2)[1], (1, 5, 7, 2)),
    "tile": Case(lambda x: jnp.tile(conv(x, W3, (2, 1)), (1, 2, 1, 1)), (1, 5, 4, 2)),
    "stack": Case(lambda x: jnp.stack([x, conv(x, W3)], axis=1), (1, 4, 5, 2),
                  out_layout="NBHWC"),
    "unstack": Case(lambda x: jnp.unstack(conv(x, W3), axis=1)[2], (1, 5, 4, 2),
                    out_layout="NWC"),
    "gather_take": Case(lambda x: jnp.take(x, np.array([4, 0, 2, 2]), axis=1), (1, 5, 4, 2)),
    "gather_2d": Case(lambda x: x[:, np.array([[3], [0], [1]]), np.array([[1, 1, 4]])],
                      (1, 5, 6, 2)),
    "resize_nearest": Case(lambda x: jax.image.resize(x, (1, 9, 4, 2), "nearest"),
                           (1, 4, 6, 2)),
    "scatter_set": Case(lambda x: x.at[:, 2:4].set(0.0) * 2, (1, 6, 4, 2)),
    "scatter_add_dup": Case(lambda x: x.at[:, np.array([1, 1, 3])].add(x[:, 3:6] * 2),
                            (1, 6, 4, 2)),
    "scatter_max": Case(lambda x: x.at[:, 1:3].max(x[:, 4:6] * 2), (1, 6, 4, 2),
                        exact=False),
    # matrix products
    "einsum_channels": Case(lambda x: jnp.einsum("nhwc,cd->nhwd", x, pos(2, 3)), (1, 4, 5, 2)),
    "resize_bilinear": Case(lambda x: jax.image.resize(x, (1, 8, 10, 2), "bilinear"),
                            (1, 4, 5, 2)),
    "resize_linear_down": Case(lambda x: jax.image.resize(x, (1, 4, 3, 2), "linear"),
                               (1, 9, 7, 2)),
    "spatial_matmul_const": Case(lambda x: jnp.einsum("nhwc,hk->nkwc", x, M_BAND),
                                 (1, 7, 3, 2)),
    "select_row_const": Case(lambda x: jnp.einsum("nhwc,h->nwc", x, np.eye(5)[3]),
                             (1, 5, 4, 2), out_layout="NWC"),
    "dense_flatten": Case(lambda x: x.reshape(1, -1) @ pos(5 * 4 * 2, 3), (1, 5, 4, 2),
                          out_layout="NC"),
    "attention": Case(_attention, (1, 3, 4, 2)),
    # reductions
    "mean_keepdims_gate": Case(lambda x: x * jnp.mean(x, axis=(1, 2), keepdims=True),
                               (1, 4, 5, 2)),
    "reduce_max_w": Case(lambda x: jnp.max(conv(x, W3), axis=2), (1, 5, 4, 2),
                         out_layout="NHC"),
    "argmax_h": Case(lambda x: x * jnp.argmax(x, axis=1)[:, None], (1, 5, 4, 2), exact=False),
    "reduce_and": Case(lambda x: x * jnp.all(x > 0.6, axis=1, keepdims=True), (1, 5, 4, 2),
                       exact=False),
    "reduce_variadic": Case(lambda x: sum(lax.reduce(
        (x, 2 * x), (0.0, 0.0), lambda a, b: (a[0] + b[0], a[1] * b[1]), (1,))),
        (1, 4, 5, 2), out_layout="NWC"),
    "reductions_more": Case(lambda x: x * (jnp.min(x, axis=1, keepdims=True)
                                           + jnp.argmin(x, axis=1)[:, None]
                                           + jnp.any(x > 1, axis=1, keepdims=True))
                            + jnp.prod(x, axis=2, keepdims=True)
                            + lax.reduce((x > 1).astype(jnp.int32), 0, lax.bitwise_xor, (2,))
                            [:, :, None], (1, 4, 5, 2)),
    "cumulative_more": Case(lambda x: lax.cumprod(x, axis=1) + lax.cummin(x, axis=1)
                            + lax.cumlogsumexp(x, axis=1), (1, 5, 3, 2)),
    "scatter_mul_min_sub": Case(lambda x: x.at[:, 1:3].multiply(x[:, 3:5])
                                + x.at[:, 1:3].min(x[:, 3:5] * 2)
                                + x.at[:, 1:3].subtract(x[:, 3:5] * 3), (1, 6, 4, 2)),
    "cumsum": Case(lambda x: jnp.cumsum(x, axis=1) + lax.cumsum(x, axis=2, reverse=True),
                   (1, 5, 4, 2)),
    "cummax": Case(lambda x: lax.cummax(x, axis=2), (1, 3, 5, 2)),
    "sort": Case(lambda x: jnp.sort(x, axis=2), (1, 3, 5, 2), exact=False),
    "top_k": Case(lambda x: lax.top_k(x, 2)[0], (1, 2, 3, 5), "NCHW", exact=False),
    "approx_top_k": Case(lambda x: lax.approx_max_k(x, 2)[0], (1, 2, 3, 5), "NCHW",
                         exact=False),
    "fft": Case(lambda x: jnp.abs(jnp.fft.fft(x, axis=2)), (1, 3, 5, 2), exact=False),
    # layout
    "pixel_shuffle": Case(_pixel_shuffle, (1, 4, 5, 8)),
    "space_to_depth": Case(_space_to_depth, (1, 8, 6, 2)),
    "flatten_roundtrip": Case(_flatten_roundtrip, (1, 4, 5, 2)),
    "repeat_upsample": Case(lambda x: conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 3, axis=2), W3),
                            (1, 3, 4, 2)),
    "transposed_output": Case(lambda x: jnp.transpose(conv(x, W3, (2, 1)), (0, 3, 2, 1)),
                              (1, 7, 5, 2), out_layout="NCWH"),
    "cls_token": Case(_cls_tokens, (1, 3, 4, 2), out_layout="NSC", exact=False),
    "factored_mismatch": Case(lambda x: x.reshape(1, 12, 2)
                              + jnp.transpose(x, (0, 2, 1, 3)).reshape(1, 12, 2),
                              (1, 3, 4, 2), out_layout="NSC", exact=False),
    "reshape_regroup": Case(lambda x: x.reshape(1, 4, 6, 2) * 2, (1, 6, 4, 2), exact=False),
    # pointwise, pass-through, nested
    "elementwise_mix": Case(lambda x: jnp.where(x > 1.0, jnp.clip(x, 0.6, 1.2), x * 2)
                            + jax.nn.gelu(conv(jax.nn.relu(x), W3)) ** 2, (1, 5, 4, 2)),
    "pass_through": Case(lambda x: lax.optimization_barrier(
        checkpoint_name(jax.device_put(jnp.array(x, copy=True)), "n")).astype(jnp.float32)
        * lax.stop_gradient(x), (1, 4, 3, 2)),
    "sharding_constraint": Case(lambda x: lax.with_sharding_constraint(
        x, jax.sharding.SingleDeviceSharding(jax.devices()[0])) * 2, (1, 3, 4, 2)),
    "jit_nested": Case(jax.jit(lambda x: jax.jit(lambda y: conv(y, W3, (2, 2)))(x) + 1),
                       (1, 7, 6, 2)),
    "custom_vjp": Case(_custom_vjp(), (1, 5, 4, 2)),
    "remat": Case(jax.checkpoint(lambda x: jnp.sin(conv(x, W3)) + 2), (1, 4, 5, 2)),
    "cond_const": Case(lambda x: lax.cond(True, lambda y: conv(y, W3), lambda y: y, x),
                       (1, 4, 5, 2)),
    "cond_data": Case(lambda x: lax.cond(x.sum() > 0, lambda y: conv(y, W1), lambda y: y * 2,
                                         x), (1, 4, 5, 2), exact=False),
    "grad_inside": Case(_grad_inside, (1, 3, 4, 2)),
}


def regions_vs_oracle(fn, shape, layout="NHWC", out_layout=None, exact=True, **analyze_kw):
    """Assert the analytic regions of fn's output match (or contain) the oracle's boxes."""
    x = jax.ShapeDtypeStruct(shape, jnp.float64)
    a = analyze(fn, example_inputs=x, layout=layout, **analyze_kw)
    positions, boxes = support_boxes(fn, shape, layout=layout, out_layout=out_layout)
    regions = a.regions()
    node_ndim = regions.lo.ndim - 1
    for p, box in zip(positions, boxes):
        # extra node axes: size-1 (indices selected away); fewer: the output lost its
        # spatial structure (a global op), every position has the same region
        mine = regions.at((p + (0,) * node_ndim)[:node_ndim])
        mine = None if any(m is None for m in mine) else [tuple(m) for m in mine]
        if exact:
            assert mine == box, f"position {p}: analytic {mine} vs gradient {box}"
        elif box is not None:
            assert mine is not None and all(m[0] <= b[0] and b[1] <= m[1]
                                            for m, b in zip(mine, box)), (p, mine, box)
    return a


@pytest.mark.parametrize("name", list(CASES))
def test_rule_against_oracle(name):
    c = CASES[name]
    regions_vs_oracle(c.fn, c.shape, c.layout, c.out_layout, c.exact)


def _callbacks(x):
    from jax.experimental import io_callback
    jax.debug.print("{}", x[0, 0, 0, 0])
    jax.debug.callback(lambda v: None, x[0, 0, 0, 0])
    spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
    y = jax.pure_callback(lambda v: np.asarray(v) * 2, spec, x)
    return x * 2 + y + io_callback(lambda v: np.asarray(v), spec, x[:, ::-1])


# ops the gradient cannot go through: checked for their structure only
STRUCTURAL = {
    "callbacks": (_callbacks, (1, 3, 4, 2), lambda a: a.node().is_global),
}


@pytest.mark.parametrize("name", list(STRUCTURAL))
def test_rule_structure(name):
    fn, shape, check = STRUCTURAL[name]
    assert check(analyze(fn, example_inputs=jax.ShapeDtypeStruct(shape, jnp.float64)))


def _primitives(fn, shape):
    names = set()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(jax.ShapeDtypeStruct(shape, jnp.float64)).jaxpr)
    return names


# names kept for other JAX versions (renamed primitives) or not reachable from user code here
NOT_IN_THIS_JAX = {"pjit", "checkpoint", "custom_vjp_call_jaxpr", "closed_call", "call",
                   "copy_p", "mulhi"}


def test_every_rule_has_a_case():
    seen = set().union(*(_primitives(c.fn, c.shape) for c in CASES.values()),
                       *(_primitives(fn, shape) for fn, shape, _ in STRUCTURAL.values()))
    missing = []
    by_rule: dict[str, list[str]] = {}
    for name, fn in RULES.items():
        by_rule.setdefault(fn.__name__, []).append(name)
    for rule, names in by_rule.items():
        if not seen & set(names):
            missing.append(rule)
    assert not missing, f"rules without a case: {missing}"
    # every name of a non-pointwise rule is exercised, unless it does not exist in this JAX
    pointwise = set(jax_rules.ELEMENTWISE)
    unexercised = {n for n in RULES if n not in seen and n not in pointwise} - NOT_IN_THIS_JAX
    assert not unexercised, f"registered primitives without a case: {sorted(unexercised)}"


def test_pointwise_names_are_primitives():
    """The explicit pointwise list names real primitives (typos would silently never match)."""
    from jax.extend.core import Primitive
    from jax.extend.core import primitives as P
    public = {v.name for v in vars(P).values() if isinstance(v, Primitive)}
    unknown = set(jax_rules.ELEMENTWISE) - public - NOT_IN_THIS_JAX
    assert not unknown, sorted(unknown)
