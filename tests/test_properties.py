"""Properties against brute force: random chains and random DAGs (hypothesis)."""

import numpy as np
from brute import boxes, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytic import Window, analyze, chain_closed_form, chain_recurrence
from analytic.propagate import paper_reverse
from analytic.regions import exact_regions
from analytic.spec import load_spec
from experiments.fuzz import size_after

windows = st.builds(
    lambda k, s, d, b, a: Window(kernel=k, stride=s, dilation=d, pad=(b, a)),
    st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 3), st.integers(0, 3))


@given(st.lists(windows, min_size=1, max_size=8))
def test_closed_form_equals_recurrence(chain):
    assert chain_closed_form(chain) == chain_recurrence(chain)


@settings(max_examples=60, deadline=None)
@given(st.lists(windows, min_size=1, max_size=4), st.integers(0, 40))
def test_chain_formulas_equal_brute_force_inside_the_input(chain, extra):
    r, s, p = chain_closed_form(chain)
    n = r + extra + 2 * sum(w.pad[0] + w.pad[1] for w in chain)
    spec = {"input": [n], "nodes": [
        {"name": f"l{i}", "op": "conv", "inputs": ["input" if i == 0 else f"l{i - 1}"],
         "kernel": w.kernel, "stride": w.stride, "dilation": w.dilation, "pad": [list(w.pad)]}
        for i, w in enumerate(chain)]}
    try:
        graph = load_spec(spec)
    except ValueError:  # a window larger than its input somewhere: nothing to compare
        return
    result = analyze(graph)
    assert (result.size, result.stride, result.padding) == ((r,), (s,), (p,))
    rev = paper_reverse(graph, graph.output)[graph.input][0]
    assert (rev.size, rev.stride, rev.padding) == (r, s, p)
    lo, hi = boxes(run(spec)[graph.output], (n,))
    for x in range(graph[graph.output].shape[0]):
        u, v = x * s - p, x * s - p + r - 1
        if 0 <= u and v < n:  # the formula's region lies inside the input: it is the truth
            assert (lo[0, x], hi[0, x]) == (u, v)


@st.composite
def random_dags(draw):
    """Random spec graphs over every spec op, with branches, merges and misalignment."""
    ndim = draw(st.sampled_from([1, 1, 2]))
    limit = 40 if ndim == 1 else 10
    shape = [draw(st.integers(3, limit if ndim == 1 else 9)) for _ in range(ndim)]
    nodes, shapes = [], {"input": tuple(shape)}
    for i in range(draw(st.integers(1, 7))):
        name = f"n{i}"
        names = list(shapes)
        parent = draw(st.sampled_from(names[-3:] if draw(st.booleans()) else names))
        ps = shapes[parent]
        op = draw(st.sampled_from(["conv", "conv", "pool", "pad", "add", "concat",
                                   "conv_transpose", "upsample", "pixel_shuffle", "slice",
                                   "pointwise", "global"]))
        node = {"name": name, "op": op, "inputs": [parent]}
        if op in ("conv", "pool"):
            k = [draw(st.integers(1, 4)) for _ in ps]
            s = [draw(st.integers(1, 3)) for _ in ps]
            d = [draw(st.integers(1, 2)) for _ in ps]
            pad = [[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in ps]
            ceil = op == "pool" and draw(st.booleans())
            out = tuple(size_after(n, *a, ceil) for n, *a in zip(ps, k, s, d, *zip(*pad)))
            node.update(kernel=k, stride=s, dilation=d, pad=pad)
            if ceil:
                node["ceil_mode"] = True
        elif op == "pad":
            mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
            low = -1 if mode == "constant" else 0
            pad = [[draw(st.integers(low, min(3, n - 1))), draw(st.integers(low, min(3, n - 1)))]
                   for n in ps]
            node.update(pad=pad, mode=mode)
            out = tuple(n + b + a for n, (b, a) in zip(ps, pad))
        elif op in ("add", "concat"):
            axis = draw(st.sampled_from(["channel"] + list(range(ndim)))) if op == "concat" \
                else "channel"
            same = [m for m, sh in shapes.items() if (
                sh == ps if axis == "channel" else
                sh[:axis] + sh[axis + 1:] == ps[:axis] + ps[axis + 1:])]
            other = draw(st.sampled_from(same))
            node["inputs"] = [parent, other]
            if axis != "channel":
                node["axis"] = axis
                out = tuple(n + (shapes[other][a] if a == axis else 0) for a, n in enumerate(ps))
            else:
                out = ps
        elif op == "conv_transpose":
            k = [draw(st.integers(1, 4)) for _ in ps]
            s = [draw(st.integers(1, 3)) for _ in ps]
            d = [draw(st.integers(1, 2)) for _ in ps]
            pad = [[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in ps]
            outpad = [draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d)]
            node.update(kernel=k, stride=s, dilation=d, pad=pad, output_padding=outpad)
            out = tuple((n - 1) * si - b - a + di * (ki - 1) + 1 + op_
                        for n, ki, si, di, (b, a), op_ in zip(ps, k, s, d, pad, outpad))
        elif op in ("upsample", "pixel_shuffle"):
            factor = draw(st.integers(2, 3))
            node.update(mode="nearest", scale=factor) if op == "upsample" else \
                node.update(factor=factor)
            out = tuple(n * factor for n in ps)
        elif op == "slice":
            start = [draw(st.integers(0, 2)) for _ in ps]
            step = [draw(st.integers(1, 3)) for _ in ps]
            node.update(start=start, step=step)
            out = tuple(len(range(b, n, s)) for n, b, s in zip(ps, start, step))
        elif op == "global":
            out = (1,) * ndim
        else:
            out = ps
        if any(n < 1 for n in out) or any(n > limit for n in out):
            continue
        nodes.append(node)
        shapes[name] = out
    if not nodes:
        nodes.append({"name": "n_last", "op": "pointwise", "inputs": ["input"]})
    return {"input": shape, "nodes": nodes}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_exact_regions_equal_brute_force_on_random_dags(spec):
    graph = load_spec(spec)
    names = [n["name"] for n in spec["nodes"]]
    exact = exact_regions(graph, names)
    truth = run(spec)
    for name in names:
        lo, hi = boxes(truth[name], spec["input"])
        got = exact[name]
        empty = lo > hi
        assert np.array_equal(got.lo > got.hi, empty), name
        assert np.array_equal(np.where(empty, 0, got.lo), np.where(empty, 0, lo)), name
        assert np.array_equal(np.where(empty, 0, got.hi), np.where(empty, 0, hi)), name


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_rsp_are_exact_where_the_graph_says_it_is_shift_invariant(spec):
    """Where r, S, P are reported and the node is shift-invariant, interior positions' exact
    regions are the formula's: u = x*S - P, v = u + r - 1 (on every axis)."""
    graph = load_spec(spec)
    result = analyze(graph)
    row = result.node()
    if not row.shift_invariant or any(s is None for s in row.size):
        return
    truth_lo, truth_hi = boxes(run(spec)[graph.output], spec["input"])
    axes = result.propagation.axis_of[row.name]
    for a, (r, s, p) in enumerate(zip(row.size, row.stride, row.padding)):
        j = axes[a]
        for idx in np.ndindex(*row.shape):
            u = idx[j] * s - p
            if 0 <= u and u + r - 1 < spec["input"][a] and truth_lo[(0, *idx)] <= truth_hi[
                    (0, *idx)]:
                inside = all(0 <= idx[axes[b]] * row.stride[b] - row.padding[b] and
                             idx[axes[b]] * row.stride[b] - row.padding[b] + row.size[b] - 1
                             < spec["input"][b] for b in range(len(row.size)))
                if inside and not _crops(spec):
                    assert (truth_lo[(a, *idx)], truth_hi[(a, *idx)]) == (u, u + r - 1)


def _crops(spec):
    """Crops hide inputs the formula counts: skip those graphs. Negative pads, slices, and
    transposed convolutions padded by more than their dilated kernel reaches (out = in
    shifted: kernel 1, pad 1 drops the first input; as a window, padding -1)."""
    def transposed_crop(n):
        return n["op"] == "conv_transpose" and any(
            p > d * (k - 1) for pads, k, d in zip(n["pad"], n["kernel"], n.get(
                "dilation", [1] * len(n["kernel"]))) for p in pads)
    return any(n["op"] == "slice" or (n["op"] == "pad" and "-" in str(n.get("pad")))
               or transposed_crop(n) for n in spec["nodes"])
