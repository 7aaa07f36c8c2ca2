"""The worked cases of the Distill article (DESIGN.md §7): numbers written here from the paper."""

from pathlib import Path

import pytest

from analytic import Window, analyze, chain_closed_form, chain_recurrence
from analytic.geometry import center, feature_at, region
from analytic.propagate import paper_reverse
from analytic.spec import load_spec

SPECS = Path(__file__).resolve().parents[1] / "analytic" / "specs"


def chain(n, *layers):
    """A 1-D spec of consecutive layers given as (op, fields) pairs."""
    nodes, prev = [], "input"
    for i, (op, fields) in enumerate(layers):
        nodes.append({"name": f"l{i + 1}", "op": op, "inputs": [prev], **fields})
        prev = f"l{i + 1}"
    return {"input": [n], "nodes": nodes}


def regions_1d(result):
    (axis,) = result.axis_regions()
    return [tuple(r) if r is not None else None for r in axis]


def unclipped_1d(result):
    return [result.region_of(i)["unclipped"][0] for i in range(result.node().shape[0])]


def test_d0_regions_and_unread_inputs():
    a = analyze(load_spec(chain(6, ("conv", {"kernel": 2, "stride": 3, "pad": [[1, 1]]}))))
    assert regions_1d(a) == [(0, 0), (2, 3), (5, 5)]
    assert unclipped_1d(a) == [(-1, 0), (2, 3), (5, 6)]
    read = {i for lo, hi in regions_1d(a) for i in range(lo, hi + 1)}
    assert {1, 4}.isdisjoint(read)


def test_d1_the_papers_four_layer_example():
    a = analyze(SPECS / "distill_d1.json")
    widths = [n.shape[0] for n in a.nodes[1:]]
    assert widths == [7, 7, 7, 4]
    assert (a.size, a.stride, a.padding) == ((7,), (4,), (3,))
    assert regions_1d(a) == [(0, 3), (1, 7), (5, 11), (9, 12)]
    assert unclipped_1d(a)[0] == (-3, 3) and unclipped_1d(a)[3] == (9, 15)


@pytest.mark.parametrize("n, kernel, stride, expected", [
    (8, 1, 3, [(0, 0), (3, 3), (6, 6)]),  # D2
    (5, 2, 3, [(0, 1), (3, 4)]),  # D3
    (8, 5, 3, [(0, 4), (3, 7)]),  # D4
], ids=["D2", "D3", "D4"])
def test_single_conv_regions(n, kernel, stride, expected):
    a = analyze(load_spec(chain(n, ("conv", {"kernel": kernel, "stride": stride}))))
    assert regions_1d(a) == expected


def test_d5_first_feature_region_includes_padding():
    a = analyze(SPECS / "distill_d5.json")
    assert (a.size, a.stride, a.padding) == ((6,), (3,), (1,))
    r = a.region_of(0)
    assert r["unclipped"] == [(-1, 4)] and r["region"] == [(0, 4)]
    mid = a.region_of(0, "conv1")  # u1 = 0, v1 = 1 in f1 seen from f2's first feature
    assert a.node("conv2").shape == (2,) and mid["index"] == [0]


def test_d6_misaligned_network_is_a_result_with_a_diagnosis():
    a = analyze(SPECS / "distill_misaligned.json")
    assert regions_1d(a) == [(0, 4), (0, 5), (2, 6), (3, 7)]
    sizes = [hi - lo + 1 for lo, hi in regions_1d(a)]
    assert sizes[1] == 6 and sizes[2] == 5  # not shift-invariant: 6 then 5 samples
    assert not a.aligned and not a.node().shift_invariant
    (m,) = a.misalignments
    assert m.node == "add" and m.strides in ((2, 1), (1, 2))
    assert {m.paths[0][1], m.paths[1][1]} == {"left", "right1"}
    assert "stride differs" in str(m)
    assert a.region_of(1)["unclipped"] == [None]  # no formula region where it is not invariant


def test_d6_strict_raises():
    from analytic import AlignmentError
    with pytest.raises(AlignmentError, match=r"misaligned at 'add'.*stride differs"):
        analyze(SPECS / "distill_misaligned.json", strict=True)


def test_d7_aligned_two_paths():
    a = analyze(SPECS / "distill_aligned.json")
    assert (a.size, a.stride, a.padding) == ((3,), (4,), (1,))
    assert a.aligned and a.node().shift_invariant
    assert regions_1d(a) == [(0, 1), (3, 5)]
    assert unclipped_1d(a)[0] == (-1, 1)


def test_border_clipping_happens_at_every_layer():
    a = analyze(load_spec(chain(8, ("conv", {"kernel": 3, "stride": 2}),
                                ("conv", {"kernel": 3, "pad": 1}))))
    assert a.region_of(2)["unclipped"] == [(2, 8)]  # the closed form, clipped at the end: [2, 7]
    assert a.region_of(2)["region"] == [(2, 6)]  # the truth: input 7 is never read


@pytest.mark.parametrize("name, r, s, p", [("vgg_16", 212, 32, 90), ("alexnet_v2", 195, 32, 64)])
def test_single_path_table_rows(name, r, s, p):
    a = analyze(SPECS / f"{name}.json")
    assert (a.size, a.stride, a.padding) == ((r, r), (s, s), (p, p))


def test_paper_reverse_agrees_with_forward_on_aligned_graphs():
    for name in ("vgg_16", "distill_aligned", "distill_d1", "alexnet_v2"):
        g = load_spec(SPECS / f"{name}.json")
        fwd = analyze(g)
        rev = paper_reverse(g, g.output)[g.input]
        assert tuple(x.size for x in rev) == fwd.size
        assert tuple(x.stride for x in rev) == fwd.stride
        assert tuple(x.padding for x in rev) == fwd.padding


def test_closed_form_and_recurrence_on_the_d1_chain():
    layers = [Window(kernel=3, stride=2, pad=(1, 1)), Window(), Window(),
              Window(kernel=3, stride=2, pad=(1, 1))]
    assert chain_closed_form(layers) == chain_recurrence(layers) == (7, 4, 3)


def test_center_and_inverse_mapping():
    # eq. 11 on D1: r=7, S=4, P=3 -> centres 0, 4, 8, 12 (p = (k-1)/2 everywhere)
    assert list(center([0, 1, 2, 3], 7, 4, 3)) == [0, 4, 8, 12]
    assert list(feature_at([0, 4, 8], 7, 4, 3)) == [0, 1, 2]
    u, v = region([0, 3], 7, 4, 3)
    assert list(u) == [-3, 9] and list(v) == [3, 15]
