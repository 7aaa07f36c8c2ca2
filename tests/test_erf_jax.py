"""erf on JAX functions: the same maps as torch for the same net and weights, the box oracle,
containment in float64, layouts, and what is not supported yet."""

from dataclasses import replace

import numpy as np
import pytest
from erf_cases import box_power, chain, mixed_net

import erf
from analytic.spec import load_spec

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
jnp = jax.numpy
lax = jax.lax


def jax_mixed(model, layout="NCHW"):
    """mixed_net's torch modules as a JAX function of (params, x), in ``layout``."""
    spec = (layout, "OIHW", layout)
    params = {k: jnp.asarray(v.detach().numpy()) for k, v in model.state_dict().items()}
    bshape = (1, -1, 1, 1) if layout == "NCHW" else (1, 1, 1, -1)
    window = (1, 1, 3, 3) if layout == "NCHW" else (1, 3, 3, 1)

    def fn(p, x):
        y = lax.conv_general_dilated(x, p["0.weight"], (2, 2), [(1, 1), (1, 1)],
                                     dimension_numbers=spec) + p["0.bias"].reshape(bshape)
        y = jax.nn.relu(y)
        y = lax.conv_general_dilated(y, p["2.weight"], (1, 1), [(2, 2), (2, 2)],
                                     rhs_dilation=(2, 2), dimension_numbers=spec)
        y = y + p["2.bias"].reshape(bshape)
        pads = [(0, 0)] * 4
        for a in (2, 3) if layout == "NCHW" else (1, 2):
            pads[a] = (1, 1)
        return lax.reduce_window(y, -jnp.inf, lax.max, window, (1, 1, 1, 1), pads)
    return fn, params


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-5), ("float64", 1e-12)],
                         ids=["f32", "f64"])
def test_torch_and_jax_give_the_same_maps(dtype, rtol):
    # same weights, same inputs (drawn by numpy from the seed): float32 agrees to rounding
    # (2e-5 relative, of the map's maximum), float64 to 1e-12
    model, graph = mixed_net(torch.float32)
    fn, params = jax_mixed(model)
    kw = dict(analysis=graph, units="all", samples=2, dtype=dtype, variants=("signed",))
    t = erf.measure(model, (1, 2, 17, 17), **kw)
    j = erf.measure((fn, params), (1, 2, 17, 17), **kw)
    assert j.settings["framework"] == "jax" and j.settings["dtype"] == dtype
    np.testing.assert_allclose(j.maps, t.maps, rtol=0, atol=rtol * t.maps.max())
    np.testing.assert_allclose(j.signed, t.signed, rtol=0, atol=rtol * t.maps.max())
    assert np.array_equal(j.maps == 0, t.maps == 0)  # the same support


def test_channels_last_layout_gives_the_same_maps():
    model, graph = mixed_net(torch.float64)
    x = np.random.default_rng(0).standard_normal((1, 2, 17, 17))
    first = erf.measure(jax_mixed(model, "NCHW"), inputs=x, analysis=graph, units="grid:3",
                        dtype="float64")
    last = erf.measure(jax_mixed(model, "NHWC"), inputs=x.transpose(0, 2, 3, 1),
                       analysis=graph, units="grid:3", dtype="float64", layout="NHWC")
    np.testing.assert_allclose(last.maps, first.maps, rtol=1e-12)


def test_jax_box_oracle_with_a_named_init():
    def fn(p, x):
        for w in p:
            x = lax.conv_general_dilated(x, w, (1,), [(1, 1)],
                                         dimension_numbers=("NCH", "OIH", "NCH"))
        return x
    params = [jnp.zeros((1, 1, 3)) for _ in range(3)]
    graph = load_spec(chain([15], [("conv", {"kernel": 3, "pad": 1})] * 3))
    r = erf.measure((fn, params), (1, 1, 15), analysis=graph, init="ones", layout="NCH")
    assert r.mean_map[4:11].tolist() == box_power(3, 3).tolist()
    with pytest.raises(erf.MeasureError, match="bare function with no params"):
        erf.measure(lambda x: fn(params, x), (1, 1, 15), analysis=graph, init="ones",
                    framework="jax")


def test_jax_containment_in_float64_and_a_wrong_rule_caught():
    model, graph = mixed_net(torch.float32)
    fn = jax_mixed(model)
    before = jax.config.jax_enable_x64  # another test module (the vjp oracle) may have set it
    r = erf.check(fn, (1, 2, 17, 17), analysis=graph, units="all")
    assert r.ok and r.settings["dtype"] == "float64" and r.settings["framework"] == "jax"
    assert jax.config.jax_enable_x64 == before  # switched on for the check only
    wrong = load_spec(chain([17, 17], [
        ("conv", {"kernel": 3, "stride": 2, "pad": 1}), ("pointwise", {}),
        ("conv", {"kernel": 3, "pad": 1}), ("pool", {"kernel": 3, "stride": 1, "pad": 1})]))
    bad = erf.check(fn, (1, 2, 17, 17), analysis=wrong, units="grid:2")
    assert not bad.ok and bad.violations


def test_jax_end_points_outside_named_scopes_are_refused():
    model, graph = mixed_net(torch.float32)
    with pytest.raises(erf.MeasureError, match="at its output or at the last node of a jax"):
        erf.measure(jax_mixed(model), (1, 2, 17, 17), analysis=graph, output="1")


def test_jax_gpu_requested_without_one_is_a_clear_error():
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("a GPU is present")
    model, graph = mixed_net(torch.float32)
    with pytest.raises(erf.MeasureError, match="has no gpu backend"):
        erf.measure(jax_mixed(model), (1, 2, 17, 17), analysis=graph, device="cuda")


def flax_net():
    """A Flax linen net (channels last) and its graph with the JAX frontend's paths."""
    from flax import linen

    class Block(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.relu(linen.Conv(3, (3, 3))(x))

    class Net(linen.Module):
        @linen.compact
        def __call__(self, x):
            return linen.Conv(2, (3, 3), strides=2)(Block(name="enc")(x))

    net = Net()
    variables = net.init(jax.random.PRNGKey(0), jnp.ones((1, 9, 9, 2)))
    graph = load_spec({"input": [9, 9], "nodes": [
        {"name": "conv_general_dilated_0", "op": "conv", "inputs": ["input"], "kernel": 3,
         "pad": 1},
        {"name": "add_0", "op": "pointwise", "inputs": ["conv_general_dilated_0"]},
        {"name": "max_0", "op": "pointwise", "inputs": ["add_0"]},
        {"name": "conv_general_dilated_1", "op": "conv", "inputs": ["max_0"], "kernel": 3,
         "stride": 2, "pad": "same"},
        {"name": "add_1", "op": "pointwise", "inputs": ["conv_general_dilated_1"]}]})
    paths = {"conv_general_dilated_0": "enc.Conv_0", "add_0": "enc.Conv_0", "max_0": "enc",
             "conv_general_dilated_1": "Conv_0", "add_1": "Conv_0"}
    for name, path in paths.items():
        graph.nodes[name] = replace(graph.nodes[name], path=path)
    return Block(), net, variables, graph


def test_flax_submodule_end_point_by_module_path():
    pytest.importorskip("flax")
    block, net, variables, graph = flax_net()
    at_enc = erf.measure((net, variables), (1, 9, 9, 2), output="enc", analysis=graph,
                         units="all", dtype="float64", samples=2)
    # the block alone is the function whose output the end-point is
    params = {"params": variables["params"]["enc"]}
    enc_graph = load_spec({"input": [9, 9], "nodes": [
        {"name": "c", "op": "conv", "inputs": ["input"], "kernel": 3, "pad": 1},
        {"name": "r", "op": "pointwise", "inputs": ["c"]}]})
    alone = erf.measure((block, params), (1, 9, 9, 2), analysis=enc_graph, units="all",
                        dtype="float64", samples=2)
    assert at_enc.analysis.output == "max_0"
    np.testing.assert_array_equal(at_enc.maps, alone.maps)
    bound = erf.check(net.bind(variables), (1, 9, 9, 2), analysis=graph,
                      output="enc.Conv_0", units="all")
    assert bound.ok and bound.analysis.output == "add_0" and len(bound.units) == 81
    with pytest.raises(erf.MeasureError, match="unbound Flax module"):
        erf.measure(net, (1, 9, 9, 2), analysis=graph)


def test_named_scope_end_point_of_a_plain_function():
    def block(p, x):
        y = lax.conv_general_dilated(x, p["w1"], (1, 1), [(1, 1), (1, 1)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y).transpose(0, 2, 1, 3).transpose(0, 2, 1, 3)  # layout ops last

    def fn(p, x):
        with jax.named_scope("block1"):
            y = block(p, x)
        with jax.named_scope("head"):
            return lax.conv_general_dilated(y, p["w2"], (2, 2), [(0, 0), (0, 0)],
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.normal(size=(3, 3, 2, 3)), jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(3, 3, 3, 1)), jnp.float32)}
    graph = load_spec({"input": [9, 9], "nodes": [
        {"name": "conv_general_dilated_0", "op": "conv", "inputs": ["input"], "kernel": 3,
         "pad": 1},
        {"name": "custom_jvp_call_0", "op": "pointwise", "inputs": ["conv_general_dilated_0"]},
        {"name": "conv_general_dilated_1", "op": "conv", "inputs": ["custom_jvp_call_0"],
         "kernel": 3, "stride": 2}]})
    for name, path in (("conv_general_dilated_0", "block1"), ("custom_jvp_call_0", "block1"),
                       ("conv_general_dilated_1", "head")):
        graph.nodes[name] = replace(graph.nodes[name], path=path)
    kw = dict(units="all", dtype="float64", samples=2)
    at_scope = erf.measure((fn, params), (1, 9, 9, 2), analysis=graph, output="block1", **kw)
    alone_graph = load_spec(chain([9, 9], [("conv", {"kernel": 3, "pad": 1}),
                                           ("pointwise", {})]))
    alone = erf.measure((block, params), (1, 9, 9, 2), analysis=alone_graph, **kw)
    np.testing.assert_array_equal(at_scope.maps, alone.maps)
    assert erf.check((fn, params), (1, 9, 9, 2), analysis=graph, output="block1").ok
    with pytest.raises(erf.MeasureError, match="last node of a jax.named_scope"):
        erf.measure((fn, params), (1, 9, 9, 2), analysis=graph,
                    output="conv_general_dilated_0")
