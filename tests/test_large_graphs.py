"""Large graphs: no recursion anywhere, exact values on long chains and branched graphs."""

from analytic import analyze
from analytic.spec import load_spec


def test_deep_chain_needs_no_recursion_and_is_exact():
    n = 20_000  # far beyond Python's recursion limit
    nodes = [{"name": f"c{i}", "op": "conv", "inputs": [f"c{i - 1}" if i else "input"],
              "kernel": 3, "pad": 1} for i in range(n)]
    result = analyze(load_spec({"input": [4], "nodes": nodes}))
    # eq. 2 by hand: r = 1 + n*(3-1), S = 1, P = n*1
    assert result.size == (1 + 2 * n,) and result.stride == (1,) and result.padding == (n,)
    assert result.regions().at([0]) == [(0, 3)]  # clipped to the 4-pixel input


def test_branched_graph_with_many_merges():
    nodes, prev = [], "input"
    for i in range(3000):
        if i % 3 == 2:
            nodes.append({"name": f"n{i}", "op": "add", "inputs": [prev, f"n{i - 2}"]})
        else:
            nodes.append({"name": f"n{i}", "op": "conv", "inputs": [prev], "kernel": 3, "pad": 1})
        prev = f"n{i}"
    result = analyze(load_spec({"input": [8], "nodes": nodes}))
    # 2000 convs on the longest path, every merge aligned (pad = (k-1)/2 everywhere)
    assert result.size == (4001,) and result.aligned
