"""The fuzz harness in CI: a fixed-seed subset agrees three ways, and the check can fail.

``python -m experiments.fuzz --count 2000 --framework torch --seed 1`` is the long run; here
150 torch and 30 JAX descriptions (about 20 s on 2 cores), plus the harness's own tests: a
broken rule is caught and shrunk to a smaller failing spec, float ties are classified, not
hidden.
"""

from __future__ import annotations

import dataclasses

import pytest

from experiments import fuzz

torch = pytest.importorskip("torch")

COUNT = {"torch": 150, "jax": 30}  # about 5 s and 15 s on 2 cores
SEED = 20260101


def frameworks() -> list[str]:
    return sorted(fuzz._builders())


@pytest.mark.parametrize("framework", frameworks())
def test_fixed_seed_subset_agrees(framework):
    report = fuzz.run(COUNT[framework], SEED, (framework,))
    assert report["disagreements"] == 0, report["failures"][:3]
    assert report["node_comparisons"] >= COUNT[framework]  # the frontend was compared
    assert report["closed_form_checks"] > 0


def test_generator_covers_the_issue_list():
    """Over a few hundred descriptions every op, 1-D/2-D/3-D, 1-pixel maps, blocks with
    misaligned shortcuts and padding-mode convs all occur (so the subset is not vacuous)."""
    import random

    from analytic import analyze
    seen_ops, dims, one_pixel, misaligned, modes = set(), set(), False, False, set()
    for k in range(300):
        desc = fuzz.random_description(random.Random(k))
        dims.add(len(desc["input"]))
        seen_ops |= {n["op"] for n in desc["nodes"]}
        modes |= {n.get("mode") for n in desc["nodes"] if n["op"] == "pad"}
        one_pixel |= 1 in desc["input"]
        if not misaligned and any(len(n["inputs"]) > 1 for n in desc["nodes"]):
            misaligned = not analyze(desc).aligned
    assert seen_ops >= {"conv", "pool", "pad", "pointwise", "add", "mul", "concat",
                        "conv_transpose", "upsample", "pixel_shuffle", "pixel_unshuffle", "slice",
                        "global"}
    assert dims == {1, 2, 3} and one_pixel and misaligned
    assert {"reflect", "replicate", "circular", "constant"} <= modes


BROKEN_CASE = {"input": [9, 8], "nodes": [
    {"name": "n0", "op": "pointwise", "inputs": ["input"]},
    {"name": "n1", "op": "pool", "inputs": ["n0"], "kernel": [2, 2], "stride": [2, 1]},
    {"name": "n2", "op": "conv", "inputs": ["n1"], "kernel": [3, 2], "pad": [[1, 1], [0, 1]]},
    {"name": "n3", "op": "pointwise", "inputs": ["n2"]},
    {"name": "n4", "op": "add", "inputs": ["n3", "n2"]}]}


def test_a_broken_rule_is_caught_and_shrunk(monkeypatch):
    """Shift every convolution window of the torch frontend by one pixel: the fuzz must report
    it, and shrinking must give a smaller spec that still fails the same way."""
    from analytic.frontends.torch_ops_window import convolution
    from analytic.frontends.torch_rules import RULES
    from analytic.graph import AxisMap

    def shifted(call):
        answer = convolution(call)
        return {k: tuple(AxisMap(m.src, dataclasses.replace(m.window, pad=(
            m.window.pad[0] + 1, m.window.pad[1] - 1)), m.explicit, m.kind)
            if isinstance(m, AxisMap) and m.window is not None and m.window.kernel > 1 else m
            for m in maps) for k, maps in answer.items()}

    for op, rule in list(RULES):
        if rule is convolution:
            monkeypatch.setitem(RULES._rules, op, shifted)
    bad = fuzz.check_description(BROKEN_CASE, ("torch",))
    assert bad is not None and bad.what == "torch analysis != spec analysis", bad
    small = fuzz.shrink(BROKEN_CASE, ("torch",), first=bad)
    assert len(small["nodes"]) < len(BROKEN_CASE["nodes"])
    assert [n["op"] for n in small["nodes"]] == ["conv"]
    again = fuzz.check_description(small, ("torch",))
    assert again is not None and again.what == bad.what
    monkeypatch.undo()
    assert fuzz.check_description(BROKEN_CASE, ("torch",)) is None


def test_a_wrong_oracle_is_caught():
    """The comparison with the gradients can fail too: an oracle one row short."""
    import numpy as np
    built = fuzz._builders()["torch"](BROKEN_CASE)
    lo, hi = built.oracle()
    wrong = np.where(hi == hi.max(), hi - 1, hi)
    assert fuzz._compare_arrays(lo, hi, lo, hi) == ""
    assert "differ" in fuzz._compare_arrays(lo, wrong, lo, hi)


def test_one_pixel_map_regression():
    """A window along a size-1 dim reads only padding: n2 depends on no input (the torch
    frontend used to drop the size-1 axis and say [0,0]x[0..6])."""
    desc = {"input": [2, 11], "nodes": [
        {"name": "n0", "op": "pool", "inputs": ["input"], "ceil_mode": True, "kernel": [3, 2],
         "stride": [3, 3], "dilation": [1, 1], "pad": [[1, 1], [1, 1]]},
        {"name": "n1", "op": "slice", "inputs": ["n0"], "start": [0, 0], "step": [1, 1]},
        {"name": "n2", "op": "pool", "inputs": ["n1"], "ceil_mode": False, "kernel": [2, 1],
         "stride": [1, 2], "dilation": [2, 1], "pad": [[1, 1], [0, 0]]}]}
    assert fuzz.check_description(desc, ("torch",)) is None


@pytest.mark.parametrize("desc, kind, note", [
    # the forward follows the exact definition, torch's gradient lands one pixel off
    ({"input": [24], "nodes": [{"name": "u", "op": "upsample", "inputs": ["input"],
                                "mode": "nearest-exact", "size": [37]}]},
     "grad", "position 18 reads [12] forward, its gradient goes to [11]"),
    # 2-D nearest-exact computes in float32: the forward itself reads pixel 11
    ({"input": [24, 3], "nodes": [{"name": "u", "op": "upsample", "inputs": ["input"],
                                   "mode": "nearest-exact", "size": [37, 5]}]},
     "forward", "torch reads [11] at position 18, the exact definition [12]"),
    # linear 2 -> 10: a tap of weight ~1e-16 where the exact weight is 0
    ({"input": [2], "nodes": [{"name": "u", "op": "upsample", "inputs": ["input"],
                               "mode": "linear", "size": [10], "align_corners": False}]},
     "forward", "torch reads [0, 1] at position 2, the exact definition [0]"),
], ids=["nearest-exact-1d-gradient", "nearest-exact-2d-forward", "linear-forward"])
def test_float_ties_are_classified_not_hidden(desc, kind, note):
    checked = fuzz.Checked()
    assert fuzz.check_description(desc, ("torch",), checked=checked) is None
    assert note in checked.inexact["torch"]
    built = fuzz._builders()["torch"](desc)
    assert bool(built.grad_inexact) == (kind == "grad")
    assert bool(built.inexact) == (kind == "forward")


FOUND = {  # minimal specs of disagreements the long runs found, fixed at their root
    "global-then-padded-conv-along-1-pixel-axis": {"input": [9, 1], "nodes": [
        {"name": "n0", "op": "global", "inputs": ["input"]},
        {"name": "n1", "op": "conv", "inputs": ["n0"], "kernel": [2, 1], "stride": [3, 1],
         "dilation": [1, 2], "pad": [[2, 2], [1, 1]]}]},
    "global-of-1-pixel-axis-in-place": {"input": [3, 2], "nodes": [
        {"name": "n1", "op": "slice", "inputs": ["input"], "start": [1, 0], "step": [2, 1]},
        {"name": "n2", "op": "global", "inputs": ["n1"]}]},
    "reflect-pad-path-is-its-live-node": {"input": [16], "nodes": [
        {"name": "n8", "op": "pad", "inputs": ["input"], "pad": [[2, 0]], "mode": "reflect"}]},
    "stride-1-transposed-conv-is-a-window": {"input": [19], "nodes": [
        {"name": "n10", "op": "conv_transpose", "inputs": ["input"], "kernel": [4],
         "stride": [1], "dilation": [1], "pad": [[1, 1]], "output_padding": [0]}]},
    "linear-resize-8-to-7-is-a-window": {"input": [1, 8], "nodes": [
        {"name": "n1", "op": "upsample", "inputs": ["input"], "mode": "bilinear",
         "size": [3, 7], "align_corners": False}]},
    "pixel-shuffle-then-add": {"input": [2, 3], "nodes": [
        {"name": "n1", "op": "pixel_shuffle", "inputs": ["input"], "factor": 2},
        {"name": "n2", "op": "add", "inputs": ["n1", "n1"]}]},
}


@pytest.mark.parametrize("framework", frameworks())
@pytest.mark.parametrize("name", sorted(FOUND))
def test_found_by_the_fuzz(name, framework):
    assert fuzz.check_description(FOUND[name], (framework,)) is None
