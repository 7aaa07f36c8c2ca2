"""erf.measure on torch models: unit selection, batching and packing (exact), end-points by
forward hook, non-finite gradients, eval mode, devices, results and their files."""

import json
from dataclasses import replace

import numpy as np
import pytest
from erf_cases import Blowup, chain, conv_stack, mixed_net

import erf
from analytic.spec import load_spec
from erf.impulses import axis_grid, pack_units, select_units, unit_boxes

torch = pytest.importorskip("torch")
nn = torch.nn


# ---- units ----------------------------------------------------------------------------------

def test_unit_selections():
    assert select_units("center", (7, 8)).tolist() == [[3, 4]]
    assert select_units("all", (2, 3)).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1],
                                                    [1, 2]]
    assert axis_grid(14, 8).tolist() == [1, 3, 4, 6, 7, 9, 10, 12]  # interior, distinct
    assert axis_grid(7, 6).tolist() == [0, 1, 2, 4, 5, 6]  # n - 1: spread over the axis
    assert axis_grid(5, 9).tolist() == [0, 1, 2, 3, 4]  # more than n: every position
    assert select_units("grid:2", (8, 5)).tolist() == [[2, 1], [2, 3], [5, 1], [5, 3]]
    assert select_units([(1, 2), (0, 0)], (3, 3)).tolist() == [[1, 2], [0, 0]]
    assert select_units((1, 2), (3, 3)).tolist() == [[1, 2]]
    assert select_units("center", ()).shape == (1, 0)  # a global end-point has one unit


@pytest.mark.parametrize("units,message", [
    ("middle", "use 'center'"), ("grid:0", "at least 1"), ([(3, 0)], "outside the end-point"),
    ([(1, 2, 3)], "need 2 indices"), ([(0.5, 1)], "must be integers")],
    ids=["name", "grid0", "outside", "arity", "float"])
def test_unit_selection_errors(units, message):
    with pytest.raises(erf.MeasureError.__mro__[1], match=message):  # a SpecError/ErfError
        select_units(units, (3, 3))


def test_packing_groups_are_disjoint_and_cover_every_unit():
    rng = np.random.default_rng(0)
    lo = rng.integers(0, 20, (40, 2))
    boxes = np.stack([lo, lo + rng.integers(0, 6, (40, 2))], axis=-1)
    groups = pack_units(boxes, (26, 26))
    assert sorted(i for g in groups for i in g) == list(range(40))
    for g in groups:
        for a in g:
            for b in g:
                if a < b:
                    apart = (boxes[a, :, 1] < boxes[b, :, 0]) | (boxes[b, :, 1] < boxes[a, :, 0])
                    assert apart.any(), (a, b)
    assert len(groups) < 40  # something was packed


# ---- exactness of batching and packing ------------------------------------------------------

def test_batched_and_packed_equal_one_unit_at_a_time_exactly():
    model, graph = mixed_net(torch.float64)
    kw = dict(analysis=graph, units="all", variants=("abs", "signed", "squared"))
    one = erf.measure(model, (1, 2, 17, 17), chunk=1, **kw)
    batched = erf.measure(model, (1, 2, 17, 17), chunk=32, **kw)
    packed = erf.measure(model, (1, 2, 17, 17), pack=True, chunk=4, **kw)
    assert one.settings["groups"] == 81 and packed.settings["groups"] < 81
    assert batched.settings["backward"] == "batched"
    for r in (batched, packed):
        assert np.array_equal(r.maps, one.maps)
        assert np.array_equal(r.signed, one.signed)
        assert np.array_equal(r.squared, one.squared)
    assert one.maps.shape == (81, 17, 17) and np.all(one.counts == 1)


def test_batch_entries_are_samples():
    model, graph = mixed_net(torch.float64)
    x = np.random.default_rng(3).standard_normal((3, 2, 17, 17))
    together = erf.measure(model, inputs=x, analysis=graph, units="grid:2")
    apart = erf.measure(model, inputs=[x[i:i + 1] for i in range(3)], analysis=graph,
                        units="grid:2")
    assert apart.settings["samples"] == 3
    np.testing.assert_allclose(together.maps, apart.maps, rtol=1e-12)


def test_each_unit_reads_only_inside_its_region_and_the_metrics_use_it():
    model, graph = mixed_net(torch.float64)
    r = erf.measure(model, (1, 2, 17, 17), analysis=graph, units="center")
    box = r.regions[0]
    inside = np.zeros((17, 17), bool)
    inside[box[0, 0]:box[0, 1] + 1, box[1, 0]:box[1, 1] + 1] = True
    assert np.all(r.mean_map[~inside] == 0) and r.mean_map[inside].max() > 0
    assert r.metrics["rf_ratio"]["rf_area"] == inside.sum()
    assert r.center == [8.0, 8.0]


# ---- end-points -----------------------------------------------------------------------------

def test_end_point_by_module_path_equals_the_truncated_model():
    model, graph = mixed_net(torch.float64)
    hooked = erf.measure(model, (1, 2, 17, 17), analysis=graph, output="2", units="grid:3")
    truncated = erf.measure(model[:3], (1, 2, 17, 17), analysis=graph, output="2",
                            units="grid:3")
    assert hooked.analysis.output == "2" and hooked.units.tolist() == truncated.units.tolist()
    assert np.array_equal(hooked.maps, truncated.maps)


class Shared(nn.Module):
    """One ReLU module called twice (like torchvision's Bottleneck)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x)))) * 2


def shared_graph(paths=("relu", "relu")):
    spec = {"input": [11], "nodes": [
        {"name": "conv1", "op": "conv", "inputs": ["input"], "kernel": 3, "pad": 1},
        {"name": "relu_0", "op": "pointwise", "inputs": ["conv1"]},
        {"name": "conv2", "op": "conv", "inputs": ["relu_0"], "kernel": 3, "pad": 1},
        {"name": "relu_1", "op": "pointwise", "inputs": ["conv2"]},
        {"name": "mul", "op": "pointwise", "inputs": ["relu_1"]}]}
    graph = load_spec(spec)
    for name, path in zip(("relu_0", "relu_1"), paths):  # the paths a frontend would give
        graph.nodes[name] = replace(graph.nodes[name], path=path)
    return graph


@pytest.mark.parametrize("paths", [("relu", "relu"), ("relu", "relu@1")], ids=["rank", "at"])
def test_a_module_called_twice_is_captured_at_the_right_call(paths):
    graph = shared_graph(paths)
    model = Shared().double()
    kw = dict(analysis=graph, init="ones", input_dist="ones")
    first = erf.measure(model, (1, 1, 11), output="relu_0", **kw)
    second = erf.measure(model, (1, 1, 11), output="relu_1", **kw)
    assert first.mean_map.tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert second.mean_map.tolist() == [0, 0, 0, 1, 2, 3, 2, 1, 0, 0, 0]
    if paths[1] == "relu@1":
        by_path = erf.measure(model, (1, 1, 11), output="relu@1", **kw)
        assert by_path.mean_map.tolist() == second.mean_map.tolist()


def test_an_end_point_that_is_no_module_output_is_refused():
    graph = shared_graph(("relu", "functional_op"))
    with pytest.raises(erf.MeasureError, match="not the output of a submodule"):
        erf.measure(Shared(), (1, 1, 11), analysis=graph, output="relu_1")


def test_output_node_shape_must_fit_the_captured_tensor():
    model, _ = mixed_net()
    wrong = load_spec(chain([17, 17], [("conv", {"kernel": 3, "pad": 1})] * 4))  # no stride
    with pytest.raises(erf.MeasureError, match="does not hold the spatial shape"):
        erf.measure(model, (1, 2, 17, 17), analysis=wrong)


# ---- non-finite gradients -------------------------------------------------------------------

def blowup_net():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), Blowup((9, 9), (4, 4)),
                          nn.Conv2d(1, 1, 3, padding=1, bias=False))
    graph = load_spec(chain([9, 9], [("conv", {"kernel": 3, "pad": 1}), ("pointwise", {}),
                                     ("conv", {"kernel": 3, "pad": 1})]))
    return model, graph


@pytest.mark.parametrize("pack", [False, True], ids=["plain", "packed"])
def test_nan_and_inf_gradients_are_flagged_and_left_out(pack):
    model, graph = blowup_net()
    r = erf.measure(model, (1, 1, 9, 9), analysis=graph, units="all", samples=2, pack=pack)
    near = np.all(np.abs(r.units - 4) <= 1, axis=1)  # units whose impulse reaches (4, 4)
    assert r.nonfinite == 2 * near.sum() == 18
    assert np.all(r.counts[near] == 0) and np.all(r.counts[~near] == 2)
    assert np.all(np.isnan(r.maps[near])) and np.all(np.isfinite(r.maps[~near]))
    assert np.all(np.isfinite(r.mean_map))
    np.testing.assert_array_equal(r.mean_map, r.maps[~near].mean(axis=0))
    assert "18 (unit, sample) gradients had NaN/inf" in str(r)


def test_a_measurement_with_no_finite_gradient_reports_it_in_the_metrics():
    model, graph = blowup_net()
    r = erf.measure(model, (1, 1, 9, 9), analysis=graph, units="center")
    assert r.nonfinite == 1 and "error" in r.metrics and np.all(np.isnan(r.mean_map))


# ---- modes, devices, arguments --------------------------------------------------------------

def bn_net(track=True):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2,
                          track_running_stats=track))
    graph = load_spec(chain([8, 8], [("conv", {"kernel": 3, "pad": 1}), ("pointwise", {})]))
    return model, graph


def test_the_users_model_is_left_as_it_was():
    model, graph = bn_net()
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    erf.measure(model, (1, 1, 8, 8), analysis=graph, init="normal", dtype="float64")
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert next(model.parameters()).dtype == torch.float32


def test_batch_norm_with_batch_statistics_is_refused_unless_allowed():
    model, graph = bn_net(track=False)
    with pytest.raises(erf.MeasureError, match="batch statistics even in eval mode in"):
        erf.measure(model, (1, 1, 8, 8), analysis=graph)
    r = erf.measure(model, (1, 1, 8, 8), analysis=graph, allow_train_mode=True)
    assert r.settings["allow_train_mode"] is True


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error():
    model, graph = bn_net()
    with pytest.raises(erf.MeasureError, match="sees no CUDA device"):
        erf.measure(model, (1, 1, 8, 8), analysis=graph, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_maps():  # pragma: no cover - runs on GPU machines only
    model, graph = mixed_net(torch.float64)
    cpu = erf.measure(model, (1, 2, 17, 17), analysis=graph, units="all")
    gpu = erf.measure(model, (1, 2, 17, 17), analysis=graph, units="all", device="cuda")
    np.testing.assert_allclose(gpu.maps, cpu.maps, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs,message", [
    (dict(input_dist="cauchy"), "input_dist='cauchy'"), (dict(samples=0), "samples must be"),
    (dict(variants=("abs", "log")), r"variants \['log'\]"), (dict(chunk=0), "chunk must be"),
    (dict(init="xavier"), "init='xavier'"), (dict(input_shape=(1, 1, 8, 9)), "does not hold"),
    (dict(input_shape=None), "give input_shape"), (dict(layout="NHWC"), "puts spatial sizes"),
], ids=["dist", "samples", "variant", "chunk", "init", "shape", "noshape", "layout"])
def test_argument_errors(kwargs, message):
    model, graph = bn_net()
    args = {"input_shape": (1, 1, 8, 8), **kwargs}
    with pytest.raises(erf.MeasureError.__mro__[1], match=message):
        erf.measure(model, args.pop("input_shape"), analysis=graph, **args)


def test_geometry_alone_cannot_be_measured():
    _, graph = bn_net()
    with pytest.raises(erf.MeasureError, match="describe geometry only"):
        erf.measure("analytic/specs/vgg_16.json", (1, 3, 224, 224))
    with pytest.raises(erf.MeasureError, match="describes geometry only"):
        erf.measure(graph, (1, 1, 8, 8))


def test_input_distributions_and_given_inputs():
    model, graph = conv_stack(1, 3, ndim=1, size=7, relu=True)
    for dist in ("normal", "uniform", "ones"):
        r = erf.measure(model, (1, 1, 7), analysis=graph, input_dist=dist, init="ones")
        assert r.settings["input_dist"] == dist
    ones = erf.measure(model, (1, 1, 7), analysis=graph, input_dist="ones", init="ones")
    given = erf.measure(model, inputs=torch.ones(1, 1, 7), analysis=graph, init="ones")
    assert np.array_equal(ones.mean_map, given.mean_map) and given.settings["input_dist"] == \
        "given"
    assert ones.mean_map.tolist() == [0, 0, 1, 1, 1, 0, 0]  # ReLU open everywhere


# ---- the result -----------------------------------------------------------------------------

def test_result_prints_serialises_and_saves(tmp_path):
    model, graph = mixed_net(torch.float64)
    r = erf.measure(model, (1, 2, 17, 17), analysis=graph, units="grid:2", samples=2)
    text = str(r)
    assert "ERF at 3" in text and "4 units (grid:2)" in text and "analytic: r=" in text
    d = json.loads(json.dumps(r.to_dict()))
    assert d["units"] == r.units.tolist() and d["analytic"]["size"] == list(r.analysis.size)
    assert set(d["versions"]) == {"erfsuite", "numpy", "torch", "jax"}
    assert d["settings"]["samples"] == 2 and d["settings"]["framework"] == "torch"
    out = r.save(tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == ["erf.npy", "erf.png", "results.json"]
    assert np.array_equal(np.load(out / "erf.npy"), r.mean_map)
    import matplotlib.image
    assert matplotlib.image.imread(out / "erf.png").ndim == 3
    assert json.loads((out / "results.json").read_text())["metrics"]["shape"] == [17, 17]


def test_unit_boxes_follow_the_analysis():
    _, graph = mixed_net()
    from analytic import analyze
    a = analyze(graph)
    units = select_units("all", graph["3"].shape)
    boxes = unit_boxes(a.regions().lo, a.regions().hi, units)
    for u, box in zip(units, boxes):
        assert [tuple(b) for b in box] == a.region_of(tuple(u))["region"]


def test_a_global_end_point_has_one_unit_reading_everything():
    from analytic import Edge, Graph, Node, Window
    graph = Graph.with_input((6, 5))
    graph.add(Node("0", "conv", ("input",), (Edge.windows([Window(kernel=3, pad=(1, 1))] * 2),),
                   (6, 5), path="0"))
    graph.add(Node("2", "mean", ("0",), (Edge(()),), (), path="2"))  # pool + flatten: (N, C)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    r = erf.measure(model, (1, 1, 6, 5), analysis=graph, units="all", init="ones")
    assert r.units.shape == (1, 0) and r.regions.tolist() == [[[0, 5], [0, 4]]]
    # all-ones 3x3 kernel, 2 output channels, mean over 30 positions: 2 * (reads) / 30
    reads = np.outer([2, 3, 3, 3, 3, 2], [2, 3, 3, 3, 2])
    np.testing.assert_allclose(r.mean_map, 2 * reads / 30, rtol=1e-6)
    assert erf.check(model, (1, 1, 6, 5), analysis=graph, units="all").ok


def test_size_one_node_axes_missing_from_the_tensor_are_matched():
    # a frontend keeps a global pool's (1, 1) axes through flatten: tensor (N, C)
    graph = load_spec(chain([6, 5], [("conv", {"kernel": 3, "pad": 1}), ("global", {})]))
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    r = erf.measure(model, (1, 1, 6, 5), analysis=graph, units="all", init="ones")
    assert r.units.tolist() == [[0, 0]]
    reads = np.outer([2, 3, 3, 3, 3, 2], [2, 3, 3, 3, 2])
    np.testing.assert_allclose(r.mean_map, 2 * reads / 30, rtol=1e-6)
