"""The JAX frontend's interface: layouts, targets, SAME padding, names, errors, user rules."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax_oracle import support_boxes

from analytic import CaptureError, SpecError, UnsupportedOpError, analyze, size_dependence
from analytic.frontends import jax as jfe

RNG = np.random.default_rng(1)


def conv(x, k, s=1, padding="SAME", d=1, layout=("NHWC", "HWIO", "NHWC"), cin=1, cout=1):
    w = jnp.ones((k, k, cin, cout), x.dtype)
    return lax.conv_general_dilated(x, w, (s, s), padding, rhs_dilation=(d, d),
                                    dimension_numbers=layout)


# ---- TF/Keras SAME padding (DESIGN.md §5) -----------------------------------------------

def same_formula(n, k, s, d):
    """DESIGN.md §5, written out here: pad_total = max(k_eff - (n % s or s), 0), left half."""
    k_eff = d * (k - 1) + 1
    total = max(k_eff - (n % s if n % s else s), 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("n", [7, 8, 9, 10, 15, 16])
@pytest.mark.parametrize("k,s,d", [(1, 2, 1), (2, 2, 1), (3, 2, 1), (3, 1, 2), (4, 3, 1),
                                   (5, 2, 2), (7, 4, 1)])
def test_same_padding_matches_formula(n, k, s, d):
    a = analyze(lambda x: conv(x, k, s, "SAME", d), (1, n, n + 1, 1))
    boxes = a.regions()
    for axis, size in enumerate((n, n + 1)):
        left, _ = same_formula(size, k, s, d)
        assert a.padding[axis] == left
        assert a.size[axis] == d * (k - 1) + 1 and a.stride[axis] == s
        n_out = -(-size // s)  # SAME keeps ceil(n / s) outputs
        assert a.node().shape[axis] == n_out
        for i in range(n_out):
            reads = [r for r in (i * s - left + m * d for m in range(k)) if 0 <= r < size]
            index = [0, 0]
            index[axis] = i
            assert boxes.at(index)[axis] == (min(reads), max(reads))


def test_same_padding_pooling_and_size_dependence():
    pool = lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
    even, odd = analyze(pool, (1, 8, 8, 1)), analyze(pool, (1, 9, 9, 1))
    assert even.padding == (same_formula(8, 3, 2, 1)[0],) * 2 == (0, 0)
    assert odd.padding == (same_formula(9, 3, 2, 1)[0],) * 2 == (1, 1)
    report = size_dependence(pool, [(1, 8, 8, 1), (1, 9, 9, 1)])
    assert report["depends_on_size"] and report["changes"]["padding"]
    assert not size_dependence(pool, [(1, 8, 8, 1), (1, 10, 10, 1)])["depends_on_size"]


# ---- layouts and targets ----------------------------------------------------------------

def test_nchw_and_nhwc_agree():
    nhwc = analyze(lambda x: conv(conv(x, 3, 2), 3), (1, 12, 10, 1))
    nchw = analyze(lambda x: conv(conv(x, 3, 2, layout=("NCHW", "HWIO", "NCHW")), 3,
                                  layout=("NCHW", "HWIO", "NCHW")), (1, 1, 12, 10), layout="NCHW")
    assert nhwc.input_shape == nchw.input_shape == (12, 10)
    assert (nhwc.size, nhwc.stride, nhwc.padding) == (nchw.size, nchw.stride, nchw.padding)
    np.testing.assert_array_equal(nhwc.regions().lo, nchw.regions().lo)
    np.testing.assert_array_equal(nhwc.regions().hi, nchw.regions().hi)


def test_layout_letters_and_defaults():
    assert jfe.default_layout(3) == "NWC" and jfe.default_layout(5) == "NDHWC"
    a = analyze(lambda x: x[::2] * 2, (9, 4), layout="TC")
    assert a.input_shape == (9,) and a.stride == (2,)
    with pytest.raises(SpecError, match="rank 2: pass layout="):
        analyze(lambda x: x * 2, (9, 4))
    with pytest.raises(SpecError, match="has 3 letters but the input has 4"):
        analyze(lambda x: x * 2, (1, 4, 4, 1), layout="NHW")
    with pytest.raises(SpecError, match="unknown letter"):
        analyze(lambda x: x * 2, (1, 4, 4, 1), layout="NHQC")
    with pytest.raises(SpecError, match="no spatial axis"):
        analyze(lambda x: x * 2, (4, 4), layout="NC")


def test_fn_params_pair_weights_are_never_read():
    def net(p, x):
        y = lax.conv_general_dilated(x, p["w"], (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.einsum("nhwc,hk->nkwc", y, p["mix"])  # a weight mixing rows: global

    params = {"w": jnp.zeros((3, 3, 1, 2)), "mix": jnp.zeros((6, 6))}
    a = analyze((net, params), (1, 8, 8, 1))
    assert a.node().is_global and a.size == (None, 3)
    r = a.regions()
    assert (r.lo[0] == 0).all() and (r.hi[0] == 7).all()


def test_example_inputs_and_shape_checks():
    x = np.ones((1, 6, 6, 1), np.float32)
    assert analyze(lambda x: conv(x, 3), example_inputs=x).size == (3, 3)
    assert analyze(lambda x: conv(x, 3), example_inputs=(x,)).size == (3, 3)
    with pytest.raises(SpecError, match="disagree"):
        analyze(lambda x: conv(x, 3), (1, 5, 5, 1), example_inputs=x)
    with pytest.raises(SpecError, match="needs input_shape"):
        analyze(lambda x: x, framework="jax")
    with pytest.raises(SpecError, match="unknown option"):
        analyze(lambda x: x, (1, 4, 4, 1), colour="blue")
    with pytest.raises(CaptureError, match="make_jaxpr failed"):
        analyze(lambda x: x @ x, (1, 4, 4, 1))
    with pytest.raises(CaptureError, match="depends on its input"):
        analyze(lambda x: jnp.ones(3), (1, 4, 4, 1))


# ---- names, scopes, end-points ------------------------------------------------------------

def test_named_scopes_are_paths_and_endpoints():
    def net(x):
        with jax.named_scope("stem"):
            x = conv(x, 3, 2)
        with jax.named_scope("block"):
            with jax.named_scope("conv"):
                x = jax.nn.relu(conv(x, 3))
            x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        return x

    a = analyze(net, (1, 32, 32, 1))
    paths = {n.path for n in a.graph}
    assert {"stem", "block.conv", "block"} <= paths
    assert analyze(net, (1, 32, 32, 1), output="stem").size == (3, 3)
    assert analyze(net, (1, 32, 32, 1), output="block.conv").size == (7, 7)
    assert a.size == (9, 9) and a.stride == (4, 4)
    assert a.node("conv_general_dilated_0").size == (3, 3)  # by node name
    with pytest.raises(SpecError, match="no node or module path"):
        analyze(net, (1, 32, 32, 1), output="head")


def test_pytree_outputs_name_their_nodes():
    def net(x):
        c1 = conv(x, 3)
        return {"fine": c1, "coarse": conv(c1, 3, 2)}

    a = analyze(net, (1, 16, 16, 1))  # the default end-point: the first leaf (sorted keys)
    assert a.node().path == "coarse" and (a.size, a.stride) == ((5, 5), (2, 2))
    fine = analyze(net, (1, 16, 16, 1), output="fine")
    assert (fine.size, fine.stride) == ((3, 3), (1, 1))


def test_output_follows_the_array_order():
    a = analyze(lambda x: jnp.transpose(conv(x, 3, 2), (0, 3, 2, 1)), (1, 12, 8, 1))
    assert a.node().shape == (4, 6)  # (W, H) as the output array holds them
    assert a.node().op == "output"


# ---- errors and user rules ----------------------------------------------------------------

def _twice_prim():
    from jax.extend.core import Primitive
    p = Primitive("twice_shift")
    p.def_impl(lambda x: 2 * x)
    p.def_abstract_eval(lambda x: jax.core.ShapedArray(x.shape, x.dtype))
    return p


TWICE = _twice_prim()


def test_unknown_primitives_are_listed_together():
    def net(x):
        y = TWICE.bind(conv(x, 3))
        y = TWICE.bind(y)
        return lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2), (0, y))[1]

    with pytest.raises(UnsupportedOpError) as err:
        analyze(net, (1, 8, 8, 1))
    msg = str(err.value)
    assert "2 primitives have no receptive-field rule (jax frontend)" in msg
    assert "twice_shift" in msg and "x2" in msg and "test_jax_frontend.py" in msg
    assert "while" in msg and "loops are not unrolled" in msg
    assert "rules={'primitive': rule}" in msg and "erf ops jax" in msg


def test_loops_over_constants_are_folded():
    def net(x):
        k = lax.fori_loop(0, 3, lambda i, v: v * 2, jnp.ones(3))
        return conv(x, 3) * k[0]

    assert analyze(net, (1, 8, 8, 1)).size == (3, 3)


def test_user_rules():
    net = lambda x: TWICE.bind(conv(x, 3, 2))
    pointwise = analyze(net, (1, 9, 9, 1), rules={"twice_shift": "pointwise"})
    assert (pointwise.size, pointwise.stride) == ((3, 3), (2, 2))
    assert analyze(net, (1, 9, 9, 1), rules={TWICE: "global"}).node().is_global

    def shift_rows(op):  # a user rule with the same API as the built-ins
        x = op.data(0)
        from analytic.frontends.jax_maps import shifted
        row = [(k, shifted(n, n, 1) if k == 1 else None) for k, n in enumerate(x.shape)]
        return [op.emit([x], op.out_shapes[0], [row])]

    a = analyze(net, (1, 9, 9, 1), rules={"twice_shift": shift_rows})
    assert a.padding == (-1, 1)
    with pytest.raises(SpecError, match="must be 'pointwise', 'global' or a function"):
        analyze(net, (1, 9, 9, 1), rules={"twice_shift": 3})


def test_rule_table_refuses_duplicates():
    from analytic.frontends.jax_table import RuleTable
    table = RuleTable("jax")

    @table.register("a", "b")
    def first(op):
        """first"""

    with pytest.raises(SpecError, match="registered twice"):
        @table.register("b")
        def second(op):
            """second"""


def test_supported_ops_and_cli():
    ops = dict(jfe.supported_ops())
    assert "conv_general_dilated" in ops and "gather" in ops and "while" not in ops
    from erf.cli import main
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["ops", "jax"]) == 0
    assert "reduce_window_max" in out.getvalue()


def test_cli_analyze_a_jax_function():
    from erf.cli import main
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["analyze", "models_jax:vgg16_target", "--framework", "jax",
                     "--input-shape", "1,224,224,3", "--output", "pool5"])
    assert code == 0
    assert "output pool5: r=212 S=32 P=90" in out.getvalue()


# ---- the oracle on some frontend-specific paths ------------------------------------------------

def test_cond_on_constant_picks_the_branch_exactly():
    f = lambda x: lax.cond(False, lambda y: conv(y, 5), lambda y: conv(y, 3), x)
    a = analyze(f, example_inputs=jax.ShapeDtypeStruct((1, 7, 7, 1), jnp.float64))
    assert a.size == (3, 3)
    positions, boxes = support_boxes(f, (1, 7, 7, 1))
    for p, box in zip(positions, boxes):
        assert [tuple(r) for r in a.regions().at(p)] == box


def test_scope_endpoint_is_its_last_node_even_inside_a_subscope():
    def net(x):
        with jax.named_scope("block"):
            x = jax.nn.relu(x)  # an op of the block itself, first
            with jax.named_scope("conv"):
                x = conv(x, 3, 2)  # the block's output comes from a sub-scope
        return x * 2

    a = analyze(net, (1, 16, 16, 1), output="block")
    assert a.node().op == "conv_general_dilated" and a.size == (3, 3)
