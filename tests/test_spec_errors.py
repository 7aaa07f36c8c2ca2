"""Bad specs: each a clear error naming the node and the field (never a traceback)."""

import json

import pytest

from analytic import GraphError, SpecError, analyze
from analytic.spec import load_spec


def spec(*nodes, shape=(8,), output=None):
    d = {"input": list(shape), "nodes": list(nodes)}
    if output:
        d["output"] = output
    return d


def conv(name="c", inputs=("input",), **fields):
    return {"name": name, "op": "conv", "inputs": list(inputs), **fields}


@pytest.mark.parametrize("bad, match", [
    (spec({"name": "x", "op": "warp", "inputs": ["input"]}), r"node 'x': unknown op 'warp'"),
    (spec(conv("a", ["b"]), conv("b", ["a"])), r"cycle \(involving a, b\)"),
    (spec(conv("a", ["nope"])), r"node 'a': unknown input 'nope'"),
    (spec(conv("a"), output="zzz"), r"'output' 'zzz' is not a node name"),
    (spec(conv("a", stride=0)), r"node 'a', field 'stride': must be >= 1, got 0"),
    (spec(conv("a", stride=-2)), r"field 'stride': must be >= 1, got -2"),
    (spec(conv("a", kernel=0)), r"node 'a', field 'kernel': must be >= 1, got 0"),
    (spec(conv("a", kernel=[3, 3])), r"field 'kernel': has 2 entries for 1 spatial axes"),
    (spec(conv("a", kernel=3.5)), r"field 'kernel': entries must be integers, got 3.5"),
    (spec(conv("a", kernel=True)), r"field 'kernel': entries must be integers"),
    (spec(conv("a", kernel=20)), r"node 'a', field 'kernel': window larger than its padded"),
    (spec(conv("a", pad="full")), r"field 'pad': string padding must be 'same' or 'valid'"),
    (spec(conv("a", pad=[[1, 2, 3]])), r"field 'pad': entries must be ints or \[before, after\]"),
    (spec(conv("a", stride=10**12)), r"field 'stride': is too large"),
    (spec(conv("a", colour="red")), r"node 'a' \(op conv\): unknown field\(s\) \['colour'\]"),
    (spec(conv("a"), conv("b"), {"name": "s", "op": "add", "inputs": ["a", "input"],
                                 "kernel": 1}), r"unknown field"),
    (spec(conv("a", kernel=3), {"name": "s", "op": "add", "inputs": ["a", "input"]}),
     r"node 's', field 'inputs': inputs have different shapes"),
    (spec(conv("a"), conv("a")), r"node name 'a' is used twice"),
    (spec({"name": "a", "op": "conv", "inputs": []}), r"node 'a': 'inputs' must be a non-empty"),
    (spec({"name": "a", "op": "pad", "inputs": ["input"], "pad": 9, "mode": "reflect"}),
     r"reflect padding .* must be < input size 8"),
    (spec({"name": "a", "op": "pad", "inputs": ["input"], "mode": "mirror"}),
     r"node 'a', field 'mode': must be one of"),
    (spec({"name": "a", "op": "upsample", "inputs": ["input"]}),
     r"give exactly one of 'scale' and 'size'"),
    (spec({"name": "a", "op": "concat", "inputs": ["input", "input"], "axis": 3}),
     r"field 'axis': must be 'channel' or a spatial axis 0..0"),
    (spec(conv("a"), shape=(0,)), r"'input' sizes must be between 1"),
    (spec(conv("a"), shape=()), r"'input' must be the spatial shape"),
    ({"input": [8], "nodes": []}, r"'nodes' must be a non-empty list"),
    ({"input": [8], "nodes": [conv("a")], "extra": 1}, r"unknown top-level key\(s\) \['extra'\]"),
    ([1, 2], r"the top level must be an object"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_specs_are_named(bad, match):
    with pytest.raises(SpecError, match=match):
        load_spec(bad)


def test_output_not_reachable_from_the_input():
    # a node that only reads a constant-free branch cannot exist; an output whose ancestors
    # never include the input is caught (built directly on the IR)
    from analytic import Graph
    g = Graph.with_input([4])
    with pytest.raises(GraphError, match=r"input 'ghost' is not defined before it"):
        from analytic import Edge, Node
        g.add(Node("a", "conv", ("ghost",), (Edge.pointwise(1),), (4,)))


def test_cycle_is_a_graph_error():
    with pytest.raises(GraphError, match="cycle"):
        load_spec(spec(conv("a", ["a"])))


@pytest.mark.parametrize("suffix, text, match", [
    (".json", '{"input": [8], "nodes": [', r"\.json: malformed JSON at line 1"),
    (".toml", 'input = [8\nnodes = 3', r"\.toml: malformed TOML"),
    (".json", "[" * 100000 + "]" * 100000, r"nested too deeply|malformed JSON"),
    (".yaml", "x: 1", r"unknown spec format '.yaml'"),
])
def test_malformed_files_name_the_file(tmp_path, suffix, text, match):
    path = tmp_path / f"net{suffix}"
    path.write_text(text)
    with pytest.raises(SpecError, match=match):
        load_spec(path)


def test_missing_file():
    with pytest.raises(SpecError, match=r"spec file .*nope.json does not exist"):
        analyze("nope.json")


def test_toml_and_json_specs_agree(tmp_path):
    j = tmp_path / "a.json"
    t = tmp_path / "a.toml"
    j.write_text(json.dumps(spec(conv("a", kernel=3, stride=2, pad=[[1, 0]]))))
    t.write_text('input = [8]\n[[nodes]]\nname = "a"\nop = "conv"\ninputs = ["input"]\n'
                 'kernel = 3\nstride = 2\npad = [[1, 0]]\n')
    a, b = analyze(j), analyze(t)
    assert (a.size, a.stride, a.padding) == (b.size, b.stride, b.padding) == ((3,), (2,), (1,))


def test_same_padding_depends_on_the_input_size():
    from analytic import size_dependence
    s = spec(conv("a", kernel=3, stride=2, pad="same"))
    # DESIGN §5: n=8: total = max(3 - 2, 0) = 1 -> left 0; n=9: total = max(3 - 1, 0) = 2 -> 1
    dep = size_dependence(s, [(8,), (9,)])
    assert [r["padding"] for r in dep["results"]] == [[0], [1]]
    assert dep["depends_on_size"] and dep["changes"] == {"size": False, "stride": False,
                                                         "padding": True}
