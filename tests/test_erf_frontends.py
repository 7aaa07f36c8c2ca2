"""erf with the real frontends: containment on every network of the frontend test suites,
end-points by module path (torch hook) and named scope / Flax path (JAX), assert helpers and
the CLI on a model analysed by ``analytic.analyze``. Skipped where a frontend is absent."""

import importlib
import json

import numpy as np
import pytest

import erf
from erf.cli import main
from erf.testing import assert_gradients_within_bounds, assert_receptive_field


def _frontend(framework):
    pytest.importorskip(framework)
    try:
        importlib.import_module(f"analytic.frontends.{framework}")
    except ImportError:
        pytest.skip(f"the {framework} frontend is not on this branch")


# ---- torch ----------------------------------------------------------------------------------

def torch_cases():
    _frontend("torch")
    models = pytest.importorskip("models_torch")
    return [  # VGG-16 is checked by the assertion helpers below
        ("resnet", models.ResNet((1, 2, 1, 1), width=2), (1, 3, 32, 40), None),
        ("resnet_layer2", models.ResNet((1, 2, 1, 1), width=2), (1, 3, 32, 40), "layer2"),
        ("unet", models.UNet(), (1, 3, 32, 40), None),
        ("deeplab", models.DeepLab(), (1, 3, 64, 72), "stage3"),
        ("mobilenetv2", models.MobileNetV2(), (1, 3, 64, 64), "features.10"),
    ]


def test_the_hand_written_graphs_of_the_erf_tests_match_the_torch_frontend():
    _frontend("torch")
    from erf_cases import ResidualUp, mixed_net, pooling_net, residual_up_graph

    from analytic import analyze
    cases = [(*mixed_net(), (1, 2, 17, 17)), (*pooling_net(), (1, 1, 13, 21)),
             (ResidualUp(), residual_up_graph(), (1, 2, 12, 12))]
    for model, graph, shape in cases:
        ours, theirs = analyze(graph).regions(), analyze(model, shape).regions()
        assert np.array_equal(ours.lo, theirs.lo) and np.array_equal(ours.hi, theirs.hi)


@pytest.mark.parametrize("index", range(5), ids=["resnet", "resnet_layer2", "unet", "deeplab",
                                                  "mobilenetv2"])
def test_torch_networks_gradients_inside_exact_regions(index):
    name, model, shape, output = torch_cases()[index]
    r = erf.check(model, shape, output=output, units="grid:3", samples=1)
    assert r.ok, r.summary()
    assert r.analysis.output == r.analysis.graph.resolve(output) if output else True


def test_torch_measure_at_a_shared_relu_call_and_the_box_oracle():
    _frontend("torch")
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(3)])
    r = erf.measure(model, (1, 1, 15, 15), init="ones", dtype="float64")
    assert r.mean_map[7, 4:11].tolist() == [7, 21, 42, 49, 42, 21, 7]  # 7 * [1,3,6,7,6,3,1]
    models = pytest.importorskip("models_torch")
    res = models.ResNet((1, 2, 1, 1), width=2)
    # torchvision's Bottleneck calls its one ReLU three times: the hook takes the right call
    r = erf.check(res, (1, 3, 32, 40), output="layer1.0.relu", units="grid:3", samples=1)
    assert r.ok and r.settings["endpoint_path"] == "layer1.0.relu"


def test_torch_testing_helpers_and_cli(tmp_path, capsys):
    _frontend("torch")
    models = pytest.importorskip("models_torch")
    # the paper's vgg_16 row (212/32/90) holds at any input size: r, S, P need no 'SAME'
    assert_receptive_field(models.VGG16(fc=False), (1, 3, 64, 64), size=212, stride=32,
                           padding=90, output="pool5")
    with pytest.raises(AssertionError, match=r"stride: expected \(16, 16\), got \(32, 32\)"):
        assert_receptive_field(models.VGG16(fc=False), (1, 3, 64, 64), stride=16,
                               output="pool5")
    assert_gradients_within_bounds(models.VGG16(fc=False), (1, 3, 48, 48), units="grid:2",
                                   output="pool4", samples=1)
    unet = "experiments.models.torch_nets:UNet"
    code = main(["measure", unet, "--input-shape", "1,3,32,40", "--units", "grid:2", "--out",
                 str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads((tmp_path / "results.json").read_text())
    assert d["endpoint"]["shape"] == [32, 40] and np.load(tmp_path / "erf.npy").shape == (32, 40)
    code = main(["check", unet, "--input-shape", "1,3,32,40"])
    assert code == 0 and "OK" in capsys.readouterr().out


# ---- JAX ------------------------------------------------------------------------------------

JAX_CASES = [  # the JAX frontend suite's oracle cases (tests/test_jax_models.py)
    ("resnet", (1, 40, 40, 3), "layer2", {"width": 1, "layers": (1, 2, 1, 1)}),
    ("unet", (1, 16, 16, 3), None, {"width": 1}), ("unet", (1, 16, 16, 3), "up.1", {"width": 1}),
    ("dilated", (1, 48, 48, 1), "conv7", {"width": 2})]


@pytest.mark.parametrize("case", JAX_CASES, ids=lambda c: f"{c[0]}-{c[2] or 'out'}")
def test_jax_networks_gradients_inside_exact_regions(case):
    _frontend("jax")
    models = pytest.importorskip("models_jax")
    name, shape, output, init_kw = case
    init, fn = models.MODELS[name]
    r = erf.check((fn, init(**init_kw)), shape, output=output, units="grid:3", samples=1)
    assert r.ok, r.summary()


def test_jax_packed_equals_plain_at_a_named_scope_end_point():
    _frontend("jax")
    models = pytest.importorskip("models_jax")
    init, fn = models.MODELS["resnet"]
    params = init(width=1, layers=(1, 2, 1, 1))
    kw = dict(output="layer2", units="grid:2", dtype="float64")
    a = erf.measure((fn, params), (1, 40, 40, 3), **kw)
    b = erf.measure((fn, params), (1, 40, 40, 3), pack=True, **kw)
    np.testing.assert_array_equal(a.maps, b.maps)
