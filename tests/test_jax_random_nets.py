"""Hypothesis: random small JAX networks (1-D and 2-D, chains and two-branch merges) have
exact regions equal to the jax.vjp gradient support at every output position."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jax import lax
from jax_oracle import support_boxes

from analytic import CaptureError, analyze

C = 2  # channels everywhere


def _weights(seed, *shape):
    return jnp.asarray(np.random.default_rng(seed).uniform(0.5, 1.5, size=shape))


@st.composite
def layers(draw, nd):
    kind = draw(st.sampled_from(["conv", "conv", "pool", "pad", "slice", "rev", "jnp_pad",
                                 "resize", "act", "transposed", "take", "repeat", "shuffle"]))
    per_axis = lambda s: tuple(draw(s) for _ in range(nd))
    if kind in ("conv", "transposed"):
        return {"kind": "conv", "k": per_axis(st.integers(1, 4)), "s": per_axis(st.integers(1, 3)),
                "d": per_axis(st.integers(1, 3)),
                "lhs": per_axis(st.integers(1, 3)) if kind == "transposed" else (1,) * nd,
                "pad": draw(st.one_of(st.sampled_from(["SAME", "VALID"]),
                                      st.tuples(*[st.tuples(st.integers(-1, 3), st.integers(-1, 3))
                                                  for _ in range(nd)]))),
                "seed": draw(st.integers(0, 100))}
    if kind == "pool":
        return {"kind": "pool", "op": draw(st.sampled_from(["max", "sum"])),
                "k": per_axis(st.integers(1, 3)), "s": per_axis(st.integers(1, 3)),
                "d": per_axis(st.integers(1, 2)), "base": per_axis(st.sampled_from([1, 1, 2])),
                "pad": tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))}
    if kind == "pad":
        return {"kind": "pad", "cfg": tuple((draw(st.integers(-1, 2)), draw(st.integers(-1, 2)),
                                             draw(st.integers(0, 1))) for _ in range(nd))}
    if kind == "slice":
        return {"kind": "slice", "start": per_axis(st.integers(0, 2)),
                "step": per_axis(st.integers(1, 3))}
    if kind == "rev":
        return {"kind": "rev", "axis": draw(st.integers(0, nd - 1))}
    if kind == "jnp_pad":
        return {"kind": "jnp_pad", "mode": draw(st.sampled_from(["reflect", "edge", "wrap",
                                                                  "symmetric"])),
                "cfg": tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))}
    if kind == "take":
        return {"kind": "take", "axis": draw(st.integers(0, nd - 1)),
                "index": draw(st.lists(st.integers(0, 20), min_size=1, max_size=6))}
    if kind == "repeat":
        return {"kind": "repeat", "axis": draw(st.integers(0, nd - 1)),
                "times": draw(st.integers(2, 3))}
    if kind == "shuffle":  # space-to-depth then a 1x1 conv then depth-to-space
        return {"kind": "shuffle", "axis": draw(st.integers(0, nd - 1)),
                "factor": draw(st.integers(2, 3)), "seed": draw(st.integers(0, 100))}
    if kind == "resize":
        return {"kind": "resize", "method": draw(st.sampled_from(["nearest", "linear"])),
                "scale": per_axis(st.sampled_from([0.5, 1.5, 2.0, 3.0]))}
    return {"kind": "act", "fn": draw(st.sampled_from(["relu", "sin", "square"]))}


def apply_layer(spec, x):
    nd = x.ndim - 2
    spatial = "DHW"[3 - nd:] if nd > 1 else "W"
    dn = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    k = spec["kind"]
    if k == "conv":
        w = _weights(spec["seed"], *spec["k"], C, C).astype(x.dtype)
        pad = spec["pad"]
        if any(lhs > 1 for lhs in spec["lhs"]) and isinstance(pad, str):
            pad = tuple((1, 1) for _ in range(nd))
        return lax.conv_general_dilated(x, w, spec["s"], pad, lhs_dilation=spec["lhs"],
                                        rhs_dilation=spec["d"], dimension_numbers=dn)
    if k == "pool":
        init, op = (-jnp.inf, lax.max) if spec["op"] == "max" else (0.0, lax.add)
        one = (1,)
        return lax.reduce_window(x, init, op, one + spec["k"] + one, one + spec["s"] + one,
                                 ((0, 0),) + spec["pad"] + ((0, 0),),
                                 base_dilation=one + spec["base"] + one,
                                 window_dilation=one + spec["d"] + one)
    if k == "pad":
        return lax.pad(x, 0.0, ((0, 0, 0),) + spec["cfg"] + ((0, 0, 0),))
    if k == "slice":
        index = (slice(None),) + tuple(slice(a, None, s) for a, s in zip(spec["start"],
                                                                         spec["step"]))
        return x[index]
    if k == "rev":
        return jnp.flip(x, 1 + spec["axis"])
    if k == "jnp_pad":
        return jnp.pad(x, ((0, 0),) + spec["cfg"] + ((0, 0),), mode=spec["mode"])
    if k == "take":
        n = x.shape[1 + spec["axis"]]
        return jnp.take(x, np.array([i % n for i in spec["index"]]), axis=1 + spec["axis"])
    if k == "repeat":
        return jnp.repeat(x, spec["times"], axis=1 + spec["axis"])
    if k == "shuffle":
        a, f = 1 + spec["axis"], spec["factor"]
        n = x.shape[a] - x.shape[a] % f
        x = lax.slice_in_dim(x, 0, n, axis=a)
        shape = x.shape[:a] + (n // f, f) + x.shape[a + 1:]
        y = jnp.moveaxis(x.reshape(shape), a + 1, -2)  # the factor next to the channels
        y = y.reshape(*y.shape[:-2], f * C)
        y = y @ _weights(spec["seed"], f * C, f * C).astype(y.dtype)
        y = jnp.moveaxis(y.reshape(*y.shape[:-1], f, C), -2, a + 1)
        return y.reshape(x.shape)
    if k == "resize":
        shape = (x.shape[0],) + tuple(max(1, int(n * f)) for n, f in
                                      zip(x.shape[1:-1], spec["scale"])) + (x.shape[-1],)
        return jax.image.resize(x, shape, spec["method"])
    return {"relu": jax.nn.relu, "sin": jnp.sin, "square": jnp.square}[spec["fn"]](x)


def merge(a, b, how):
    shape = tuple(min(p, q) for p, q in zip(a.shape, b.shape))
    if how == "concat":  # along the first spatial axis: crop the others only
        index = lambda v: (slice(None), slice(None)) + tuple(slice(0, n) for n in shape[2:])
        return jnp.concatenate([a[index(a)], b[index(b)]], axis=1)
    index = tuple(slice(0, n) for n in shape)
    return a[index] + b[index]


def build(program):
    trunk, left, right, how = program

    def net(x):
        for spec in trunk:
            x = apply_layer(spec, x)
        a, b = x, x
        for spec in left:
            a = apply_layer(spec, a)
        for spec in right:
            b = apply_layer(spec, b)
        return merge(a, b, how) if right else a

    return net


@st.composite
def programs(draw):
    nd = draw(st.sampled_from([1, 2]))
    sizes = tuple(draw(st.integers(4, 11)) for _ in range(nd))
    trunk = draw(st.lists(layers(nd), min_size=1, max_size=3))
    left = draw(st.lists(layers(nd), max_size=2))
    right = draw(st.lists(layers(nd), max_size=2))
    return (1, *sizes, C), (trunk, left, right, draw(st.sampled_from(["add", "concat"])))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much])
@given(programs())
def test_random_network_regions_equal_gradient_support(case):
    shape, program = case
    net = build(program)
    layout = "NWC" if len(shape) == 3 else "NHWC"
    x = jax.ShapeDtypeStruct(shape, jnp.float64)
    try:
        out = jax.eval_shape(net, x)
    except Exception:  # noqa: BLE001
        assume(False)  # e.g. a reflect pad wider than the array, a negative size
    assume(all(n >= 1 for n in out.shape) and out.size <= 400)
    positions, boxes = support_boxes(net, shape, layout=layout)
    try:
        a = analyze(net, example_inputs=x, layout=layout)
    except CaptureError as e:  # an empty intermediate: then no gradient reaches the input
        assert "depends on its input" in str(e) and all(b is None for b in boxes)
        return
    regions = a.regions()
    for p, box in zip(positions, boxes):
        mine = regions.at(p)
        mine = None if any(m is None for m in mine) else [tuple(m) for m in mine]
        assert mine == box, (p, mine, box, program)
