"""erf.check: containment of measured gradients in the exact regions (and that the check can
fail), tightness, and the erf.testing assertions."""

import numpy as np
import pytest
from erf_cases import (
    ResidualUp,
    chain,
    conv_stack,
    mixed_net,
    pooling_net,
    residual_up_graph,
)

import erf
from analytic.analysis import Analysis
from analytic.regions import Boxes
from analytic.spec import load_spec
from erf.testing import assert_gradients_within_bounds, assert_receptive_field

torch = pytest.importorskip("torch")


def cases():
    torch.manual_seed(0)
    model, graph = mixed_net()
    yield "mixed", model, (1, 2, 17, 17), graph
    model, graph = pooling_net()
    yield "pooling", model, (1, 1, 13, 21), graph
    yield "residual_up", ResidualUp(), (1, 2, 12, 12), residual_up_graph()
    model, graph = conv_stack(3, 5, ndim=1, channels=2, size=20, relu=True)
    yield "conv1d", model, (1, 2, 20), graph


@pytest.mark.parametrize("case", list(cases()), ids=lambda c: c[0])
def test_gradients_stay_inside_the_exact_regions(case):
    _, model, shape, graph = case
    r = erf.check(model, shape, analysis=graph, units="all", samples=2)
    assert r.ok, r.summary()
    assert r.violations == [] and r.nonfinite == 0
    assert r.settings["dtype"] == "float64"
    assert r.edges.shape == (len(r.units), len(shape) - 2, 2)


def test_the_check_catches_a_wrong_rule():
    model, _ = mixed_net()  # the real first conv has kernel 3; claim kernel 1
    wrong = load_spec(chain([17, 17], [
        ("conv", {"kernel": 1, "stride": 2}), ("pointwise", {}),
        ("conv", {"kernel": 3, "dilation": 2, "pad": 2}),
        ("pool", {"kernel": 3, "stride": 1, "pad": 1})]))
    r = erf.check(model, (1, 2, 17, 17), analysis=wrong, units="center", samples=8)
    assert not r.ok
    # the centre unit (4, 4): the pool reads 3..5, the dilated conv 1..7, the strided conv
    # 2j-1..2j+1: true box [1, 15] per axis; the wrong kernel claims 2j: [2, 14]
    assert r.regions[0].tolist() == [[2, 14], [2, 14]]
    found = {(v.axis, v.index) for v in r.violations}
    assert found == {(0, 1), (0, 15), (1, 1), (1, 15)}
    assert all(v.unit == (4, 4) and v.region == (2, 14) and 0 < v.value <= 1
               for v in r.violations)
    assert "FAILED" in r.summary() and "unit [4, 4] axis 0: gradient at index 1" in r.summary()


def test_the_check_catches_a_box_shrunk_by_one(monkeypatch):
    torch.manual_seed(0)
    model, graph = conv_stack(3, 3, ndim=2, size=15)  # random weights: every edge is reached
    true_regions = Analysis.regions

    def shrunk(self, name=None):
        b = true_regions(self, name)
        return Boxes(b.lo, b.hi - 1)
    monkeypatch.setattr(Analysis, "regions", shrunk)
    r = erf.check(model, (1, 1, 15, 15), analysis=graph, units="grid:3")
    assert not r.ok
    for unit, box in zip(r.units, r.regions):  # exactly the true hi edge, on both axes
        hits = {(v.axis, v.index) for v in r.violations if v.unit == tuple(unit)}
        assert hits == {(0, box[0, 1] + 1), (1, box[1, 1] + 1)}


def test_tightness_dilation_gaps_inside_but_edges_reached():
    # a dilated all-ones conv reads every other input: sparse inside, both edges reached
    model = torch.nn.Conv1d(1, 1, 3, dilation=3, bias=False)
    graph = load_spec(chain([13], [("conv", {"kernel": 3, "dilation": 3})]))
    r = erf.check(model, (1, 1, 13), analysis=graph, units="all", init="ones")
    assert r.ok and r.tight
    assert r.tightness == {"lo": [1.0], "hi": [1.0]}
    m = erf.measure(model, (1, 1, 13), analysis=graph, units="center", init="ones")
    assert m.mean_map.tolist() == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0]  # unit 3


def test_tightness_reports_edges_not_reached():
    # a kernel whose last tap is zero never reaches the hi edge of the box
    model = torch.nn.Conv1d(1, 1, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[[1.0, 1.0, 0.0]]]))
    graph = load_spec(chain([9], [("conv", {"kernel": 3})]))
    r = erf.check(model, (1, 1, 9), analysis=graph, units="all")
    assert r.ok and not r.tight
    assert r.tightness == {"lo": [1.0], "hi": [0.0]}
    assert "axis 0: lo 100% hi 0%" in r.summary()


def test_nonfinite_gradients_fail_the_check():
    from erf_cases import Blowup
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 1, 3, padding=1),
                                Blowup((9,), (4,), scale=1e200, dtype=torch.float64))
    graph = load_spec(chain([9], [("conv", {"kernel": 3, "pad": 1}), ("pointwise", {})]))
    r = erf.check(model, (1, 1, 9), analysis=graph, units="all", samples=1)
    assert r.nonfinite == 1 and not r.ok and r.violations == []  # unit 4 only
    assert "1 (unit, sample) gradients had NaN/inf entries" in r.summary()


def test_tol_is_validated():
    model, graph = mixed_net()
    with pytest.raises(erf.MeasureError, match=r"tol must lie in \[0, 1\)"):
        erf.check(model, (1, 2, 17, 17), analysis=graph, tol=1.5)


# ---- erf.testing ----------------------------------------------------------------------------

def test_assert_receptive_field_passes_and_fails_with_expected_and_actual():
    assert_receptive_field("analytic/specs/vgg_16.json", size=212, stride=32, padding=90)
    assert_receptive_field("analytic/specs/distill_d1.json", size=(7,), stride=4)
    with pytest.raises(AssertionError, match=r"size: expected \(213, 213\), got \(212, 212\)"):
        assert_receptive_field("analytic/specs/vgg_16.json", size=213, stride=32)
    with pytest.raises(AssertionError, match=r"padding: expected \(2,\), got \(3,\)"):
        assert_receptive_field("analytic/specs/distill_d1.json", padding=2)


def test_assert_gradients_within_bounds():
    model, graph = pooling_net()
    assert_gradients_within_bounds(model, (1, 1, 13, 21), analysis=graph, units="all")
    wrong = load_spec(chain([13, 21], [
        ("conv", {"kernel": 3}), ("pool", {"kernel": 2, "stride": 2, "ceil_mode": True}),
        ("pointwise", {}), ("pool", {"kernel": 1, "stride": 2}),
        ("conv", {"kernel": [1, 3], "dilation": 2})]))
    with pytest.raises(AssertionError, match=r"FAILED\n.*positions outside the region"):
        assert_gradients_within_bounds(model, (1, 1, 13, 21), analysis=wrong, units="all")


def test_check_result_serialises():
    import json
    model, graph = pooling_net()
    r = erf.check(model, (1, 1, 13, 21), analysis=graph, units="center")
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ok"] is True and d["units"] == r.units.tolist() and d["tol"] == 1e-9
    assert np.asarray(d["edges"]).shape == (1, 2, 2)
