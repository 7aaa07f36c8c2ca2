"""The torch frontend's contract: loud failures with locations, user rules, paths, options."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from models_torch import Fn, ResNet  # noqa: E402
from torch import nn  # noqa: E402
from torch_oracle import compare  # noqa: E402

import analytic  # noqa: E402
from analytic import CaptureError, SpecError, UnsupportedOpError  # noqa: E402
from analytic.frontends.torch import RULES, capture, supported_ops, trace  # noqa: E402
from analytic.frontends.torch_rules import RuleTable, reads, whole  # noqa: E402


class Sorter(nn.Module):
    def forward(self, x):
        return torch.sort(x, dim=2).values


class SortNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.head = nn.Sequential(Sorter(), nn.ReLU(), Sorter())

    def forward(self, x):
        return self.head(self.conv(x)) + torch.topk(x, x.shape[3], dim=3).values


def test_ops_without_rules_are_listed_with_count_and_location():
    with pytest.raises(UnsupportedOpError) as info:
        capture(SortNet(), (1, 2, 6, 5))
    msg = str(info.value)
    assert "2 ops without a receptive-field rule" in msg
    assert "aten.sort.default  x2  first at node sort (module head.0, tests/" in msg
    assert "test_torch_frontend.py:" in msg
    assert "aten.topk.default" in msg
    assert "rules={op: rule}" in msg


def test_unsupported_error_names_the_op_and_module():
    with pytest.raises(UnsupportedOpError, match=r"aten\.sort\.default .*module head\.0"):
        analytic.analyze(SortNet(), (1, 2, 6, 5))


def sort_rule(call):
    """A user rule: sorting along a dim is global along it."""
    x = call.inputs[0]
    return call.along(x.key, {int(call.args["dim"]) % len(x.shape): whole(2)})


def topk_rule(call):
    x = call.inputs[0]
    d = int(call.args["dim"]) % len(x.shape)
    return call.along(x.key, {d: whole(d)})


@pytest.mark.parametrize("key", [torch.ops.aten.sort.default, torch.ops.aten.sort,
                                 "aten.sort.default"], ids=["overload", "packet", "name"])
def test_user_rules_fill_the_gap(key):
    a = analytic.analyze(SortNet(), (1, 2, 6, 5),
                         rules={key: sort_rule, "aten.topk.default": topk_rule})
    assert a.node("head.0").rf[0].note == "global" and a.node("head.0").size[1] == 3
    # sort's gradient is a permutation: the oracle sees one pixel per column, inside the box
    compare(Fn(lambda m, x: torch.sort(m.c(x), 2).values, c=nn.Conv2d(2, 2, 3, padding=1)),
            (1, 2, 6, 5), trace_options={"rules": {key: sort_rule}}, exact=False)


def test_rule_errors_are_listed_like_missing_rules():
    model = Fn(lambda m, x: x[:, :, m.i, m.j], buffers={"i": torch.tensor([0, 2]),
                                                        "j": torch.tensor([1, 1])})
    with pytest.raises(UnsupportedOpError, match=r"aten\.index\.Tensor .*indexing with 2 index"):
        capture(model, (1, 2, 4, 4))


def test_ops_torch_can_decompose_are_decomposed():
    model = nn.Sequential(nn.Conv2d(4, 4, 3), nn.ChannelShuffle(2), nn.Conv2d(4, 4, 3))
    assert torch.ops.aten.channel_shuffle.default not in RULES
    cap = trace(model, (1, 4, 9, 9))
    ops = {n.target for n in cap.program.graph.nodes if n.op == "call_function"}
    assert torch.ops.aten.channel_shuffle.default not in ops
    compare(model, (1, 4, 9, 9), rsp=True)


def test_data_dependent_control_flow_is_a_capture_error():
    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x - 1

    with pytest.raises(CaptureError, match=r"torch\.export failed for Branchy.*data-dependent"):
        capture(Branchy(), (1, 2, 4, 4))


def test_a_model_that_fails_at_the_shape_is_a_capture_error():
    with pytest.raises(CaptureError, match=r"torch\.export failed .*\[\[1, 5, 8, 8\]\]"):
        capture(nn.Conv2d(3, 2, 3), (1, 5, 8, 8))


def test_bad_arguments():
    with pytest.raises(SpecError, match="input_shape"):
        capture(nn.Conv2d(3, 2, 3))
    with pytest.raises(SpecError, match="no spatial dims"):
        capture(nn.Linear(3, 2), (4, 3))
    with pytest.raises(SpecError, match="not callable"):
        capture(nn.Conv2d(3, 2, 3), (1, 3, 8, 8), rules={torch.ops.aten.sort.default: 1})


def test_model_is_left_as_it_was():
    model = ResNet((1, 1, 1, 1), width=2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = analytic.analyze(model, (1, 3, 32, 32))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert a.node("bn1").size == (7, 7)  # batch norm taken in eval mode: pointwise


def test_paths_sources_and_resolution():
    cap = trace(ResNet((1, 1, 1, 1), width=2), (1, 3, 32, 32))
    g = cap.graph
    conv = g[g.resolve("layer2.0.conv2")]
    assert conv.op == "conv2d" and conv.path == "layer2.0.conv2"
    assert conv.source.endswith(".py:" + conv.source.rsplit(":", 1)[1])
    assert "torch_nets.py" in g[g.resolve("layer2.0")].source
    assert g.resolve("layer2/0/conv2") == conv.name
    assert g.resolve(conv.name) == conv.name
    with pytest.raises(SpecError, match="no node or module path 'layer9'"):
        g.resolve("layer9")


def test_weights_and_constants_are_not_nodes():
    cap = trace(nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)), (1, 3, 8, 8))
    assert [n.op for n in cap.graph] == ["input", "conv2d", "batch_norm"]


def test_first_output_is_the_default_end_point():
    model = Fn(lambda m, x: (m.a(x), m.b(x)), a=nn.Conv2d(2, 2, 3), b=nn.Conv2d(2, 2, 5))
    a = analytic.analyze(model, (1, 2, 9, 9))
    assert a.size == (3, 3) and a.node("b").size == (5, 5)


def test_channels_last_input():
    model = Fn(lambda m, x: m.c(x.permute(0, 3, 1, 2)), c=nn.Conv2d(2, 2, (3, 5), 2))
    a = analytic.analyze(model, (1, 9, 11, 2), spatial_dims=(1, 2))
    assert (a.size, a.stride) == ((3, 5), (2, 2))


def test_user_rule_with_explicit_reads_and_torch_index():
    """A rule for torch.roll written from scratch, and positions through a merged dim."""

    def my_roll(call):
        x = call.inputs[0]
        maps = {}
        for s, d in zip(call.args["shifts"], call.args["dims"]):
            n = x.shape[d]
            maps[d] = reads(d, ((np.arange(n) - s) % n)[:, None], "roll")
        return call.along(x.key, maps)

    model = Fn(lambda m, x: torch.roll(x, 2, 3).flatten(2))
    rules = {torch.ops.aten.roll.default: my_roll}
    compare(model, (1, 2, 3, 5), out_spatial_dims=(2,), trace_options={"rules": rules})


def test_supported_ops_and_the_table():
    table = supported_ops()
    assert ("aten.conv2d.default", "convolution") in table
    assert ("aten.upsample_bilinear2d.vec", "upsample") in table
    assert table == sorted(table) and len(table) == len(RULES) > 200
    t = RuleTable("torch")
    t.register(torch.ops.aten.relu.default)(sort_rule)
    with pytest.raises(SpecError, match="already has the torch rule 'sort_rule'"):
        t.register(torch.ops.aten.relu.default)(topk_rule)


def test_analyze_dispatches_to_torch():
    a = analytic.analyze(nn.Conv2d(3, 2, 3, 2), input_shape=(1, 3, 9, 9))
    assert (a.size, a.stride, a.padding) == ((3, 3), (2, 2), (0, 0))
    b = analytic.analyze(nn.Conv2d(3, 2, 3, 2), example_inputs=torch.zeros(1, 3, 9, 9))
    assert b.size == a.size


def test_misalignment_is_reported_with_paths():
    """DESIGN.md D6: conv k5 p(2,1) s2 + (conv k3 -> conv k3), added: strides 2 vs 1."""
    model = Fn(lambda m, x: m.a(F.pad(x, (2, 1))) + m.c(m.b(x)), a=nn.Conv1d(1, 1, 5, 2),
               b=nn.Conv1d(1, 1, 3), c=nn.Conv1d(1, 1, 3))
    a, _, oracle = compare(model, (1, 1, 8))
    assert list(oracle.values()) == [[(0, 4)], [(0, 5)], [(2, 6)], [(3, 7)]]
    assert not a.aligned
    (m,) = a.misalignments
    assert m.node == "add" and m.strides in ((2, 1), (1, 2))
    assert {p[-2] for p in m.paths} == {"conv1d", "conv1d_2"}


def test_no_grad_blocks_in_forward_are_inlined():
    class NoGrad(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 2, 3)

        def forward(self, x):
            with torch.no_grad():
                y = self.c(x)
            return y + x[:, :, 1:-1, 1:-1]

    assert analytic.analyze(NoGrad(), (1, 2, 8, 8)).size == (3, 3)


def test_extra_inputs_are_constants():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 2, 3)

        def forward(self, x, mask):
            return self.c(x) * mask

    a = analytic.analyze(Masked(), example_inputs=(torch.rand(1, 2, 8, 8),
                                                   torch.rand(1, 2, 6, 6)))
    assert a.size == (3, 3) and [n.op for n in a.graph] == ["input", "conv2d", "mul"]
