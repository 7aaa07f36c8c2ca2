"""The fast capture (one forward on meta tensors) against torch.export: identical analyses.

For every network of the frontend tests, the zoo and every per-rule case: the same module
paths, and at every module path's end-point the same shape, r, S, P, notes and exact regions
of every position. Where the fast capture refuses a model (data-dependent control flow,
writes through views), ``capture="auto"`` must fall back to export and say why.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from models_torch import VGG16, DeepLab, Fn, MobileNetV2, ResNet, UNet  # noqa: E402
from torch import nn  # noqa: E402

from analytic import analyze  # noqa: E402
from analytic.analysis import analyze_graph  # noqa: E402
from analytic.errors import CaptureError, UnsupportedOpError  # noqa: E402
from analytic.frontends.torch import trace  # noqa: E402
from analytic.regions import exact_regions  # noqa: E402


def _paths(graph) -> set[str]:
    """Every module path with a node inside it (prefixes included: ``layer1``, ``layer1.0``)."""
    out = set()
    for n in graph.nodes.values():
        parts = n.path.split(".") if n.path else []
        out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return out


def assert_same_analysis(model, shape=None, *, example=None, fast_expected=True):
    """Fast and export captures of ``model`` give identical analyses (see the module doc)."""
    kw = {"example_inputs": example} if example is not None else {}
    fast = trace(model, shape, capture="auto", **kw)
    ref = trace(model, shape, capture="export", **kw)
    if fast_expected:
        assert fast.method == "fast", f"fell back to export: {fast.fallback}"
    af, ae = analyze_graph(fast.graph), analyze_graph(ref.graph)
    assert af.input_shape == ae.input_shape
    paths = _paths(ref.graph)
    assert _paths(fast.graph) == paths
    ends_f = {p: fast.graph.resolve(p) for p in sorted(paths)}
    ends_e = {p: ref.graph.resolve(p) for p in sorted(paths)}
    ends_f[""], ends_e[""] = af.output, ae.output  # the model's output
    bf = exact_regions(fast.graph, sorted(set(ends_f.values())))
    be = exact_regions(ref.graph, sorted(set(ends_e.values())))
    diff = []
    for p in ends_f:
        nf, ne = af.node(ends_f[p]), ae.node(ends_e[p])
        got = (nf.shape, nf.size, nf.stride, nf.padding, [a.note for a in nf.rf],
               nf.shift_invariant)
        want = (ne.shape, ne.size, ne.stride, ne.padding, [a.note for a in ne.rf],
                ne.shift_invariant)
        if got != want:
            diff.append(f"{p or '<output>'}: fast {got} export {want}")
        elif not (np.array_equal(bf[ends_f[p]].lo, be[ends_e[p]].lo)
                  and np.array_equal(bf[ends_f[p]].hi, be[ends_e[p]].hi)):
            diff.append(f"{p or '<output>'}: exact regions differ")
    assert not diff, f"{len(diff)} end-points differ:\n  " + "\n  ".join(diff[:10])
    return fast, ref


# ---- the frontend's test networks ---------------------------------------------------------------

NETWORKS = {
    "vgg16": (lambda: VGG16(), (1, 3, 224, 224)),
    "resnet": (lambda: ResNet((3, 4, 6, 3), width=2), (1, 3, 64, 80)),
    "resnet-inplace-blocks": (lambda: ResNet((1, 1, 1, 1), width=2), (1, 3, 33, 31)),
    "unet": (lambda: UNet(width=2), (1, 3, 32, 40)),
    "deeplab": (lambda: DeepLab(width=2), (1, 3, 64, 72)),
    "mobilenet_v2": (lambda: MobileNetV2(div=8), (1, 3, 64, 64)),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_networks(name):
    make, shape = NETWORKS[name]
    torch.manual_seed(0)
    assert_same_analysis(make(), shape)


# ---- the zoo ------------------------------------------------------------------------------------

def _slim_names():
    from experiments.models.slim import SLIM_MODELS
    return sorted(SLIM_MODELS)


@pytest.mark.parametrize("name", _slim_names())
def test_slim_zoo(name):
    from experiments.models.slim import SLIM_MODELS
    # 161: an odd size, TF 'SAME' padding is asymmetric at several layers (the nets with
    # fully connected layers as 7x7 convs need 224)
    n = 224 if name.startswith(("alexnet", "vgg")) else 161
    assert_same_analysis(SLIM_MODELS[name](), (1, 3, n, n))


def test_an_input_too_small_fails_like_export():
    from experiments.models.slim import SLIM_MODELS
    with pytest.raises(CaptureError, match="Kernel size can't be greater"):
        trace(SLIM_MODELS["vgg_a"](), (1, 3, 161, 161))


@pytest.mark.parametrize("name", ["convnext", "replknet", "small_resnet"])
def test_modern_zoo(name):
    from experiments.models import modern
    make = {"convnext": lambda: modern.convnext_t(width=0.125),
            "replknet": lambda: modern.replknet_31b(width=0.0625, depths=(1, 1, 2, 1)),
            "small_resnet": modern.small_resnet}[name]
    torch.manual_seed(0)
    assert_same_analysis(make(), (1, 3, 96, 96))


def _zoo_torch_names():
    from experiments.models.zoo import _SLIM_NAMES, ZOO
    return sorted(n for n, e in ZOO.items() if "torch" in e.factories and n not in _SLIM_NAMES)


@pytest.mark.parametrize("name", _zoo_torch_names())
def test_zoo_registry(name):
    """Every non-slim zoo entry at its default shape (the slim nets are tested above)."""
    import importlib

    from experiments.models.zoo import ZOO
    entry = ZOO[name]
    module, _, attr = entry.factories["torch"].partition(":")
    torch.manual_seed(0)
    assert_same_analysis(getattr(importlib.import_module(module), attr)(),
                         entry.default_shape["torch"])


@pytest.mark.parametrize("kw", [dict(n=4, nonlinearity="relu", subsample_every=2),
                                dict(n=3, kernel=5, dilation=2, skip=True, channels=2)],
                         ids=["relu-subsample", "dilated-skip"])
def test_luo_stacks(kw):
    from experiments.models.luo import conv_stack
    assert_same_analysis(conv_stack(**kw), (1, kw.get("channels", 1), 33, 35))


# ---- every per-rule case ------------------------------------------------------------------------

def _rule_cases():
    from test_torch_rules import CASES
    return CASES


# cases the fast capture refuses on purpose (auto falls back to export), with the reason
FALLS_BACK: dict[str, str] = {
    "copy-slice-assignment": "shares its storage",  # x[..., a:b] = y: a write through a view
    "scatter_view-select-assignment": "shares its storage",
    "scatter_view-slice-assignment-strided": "shares its storage",
    "batch_norm-functionalized-no-training-op": "shares its storage",
    "index-list-index": "did not make",  # x[:, :, [0, 3]]: torch builds the index on meta
}


@pytest.mark.parametrize("rule,make,shape,exact,rsp,output,draws", _rule_cases())
def test_rule_cases(request, rule, make, shape, exact, rsp, output, draws):
    torch.manual_seed(0)
    model = make()
    case = request.node.callspec.id
    example = torch.rand(tuple(shape), dtype=torch.float64)
    import copy
    model = copy.deepcopy(model).double()
    fast, _ = assert_same_analysis(model, example=example, fast_expected=case not in FALLS_BACK)
    if case in FALLS_BACK:
        assert fast.method == "export" and FALLS_BACK[case] in fast.fallback


# ---- what the fast capture refuses, and says so ------------------------------------------------

def _branchy(m, x):
    return m.a(x) if x.sum() > 0 else m.b(x)


def _write_through_view(x):
    y = x * 2
    top = y[:, :, :2]
    top.mul_(3)  # writes into y through a view
    return F.avg_pool2d(y, 2)


def _write_viewed(x):
    y = x * 2
    v = y[:, :, 1:]
    y.add_(1)  # v sees the write
    return v


def _write_input(x):
    x.relu_()
    return x


@pytest.mark.parametrize("fn,why", [
    (_write_through_view, "shares its storage"),
    (_write_viewed, "shares its storage"),
    (_write_input, "mutates the input"),
])
def test_inplace_through_views_falls_back(fn, why):
    model = Fn(lambda m, x: fn(x))
    with pytest.raises(CaptureError, match=why):
        trace(model, (1, 2, 8, 9), capture="fast")
    fast, _ = assert_same_analysis(model, (1, 2, 8, 9), fast_expected=False)
    assert fast.method == "export" and why in fast.fallback


def test_data_dependent_control_flow_is_refused():
    model = Fn(_branchy, a=nn.Conv2d(2, 2, 3), b=nn.Conv2d(2, 2, 5))
    with pytest.raises(CaptureError, match="forward failed on meta tensors"):
        trace(model, (1, 2, 8, 9), capture="fast")
    with pytest.raises(CaptureError, match="data-dependent"):
        trace(model, (1, 2, 8, 9))  # auto: export says what is wrong


def test_writing_a_buffer_is_refused_and_the_model_is_untouched():
    model = Fn(lambda m, x: m.buf.add_(x.mean()) * x, buffers={"buf": torch.zeros(1)})
    with pytest.raises(CaptureError, match="constant"):
        trace(model, (1, 2, 8, 9), capture="fast")
    assert model.buf.item() == 0


def test_constants_made_in_forward_keep_their_values():
    # an index tensor built in forward on the input's device: its value drives the rule
    def gather(m, x):
        idx = torch.arange(x.shape[-1] - 1, -1, -2, device=x.device)
        return x.index_select(-1, idx) + torch.ones(1, device=x.device)
    fast, _ = assert_same_analysis(Fn(gather), (1, 2, 6, 9))
    a = analyze_graph(fast.graph)
    assert a.regions().at((0, 0)) == [(0, 0), (8, 8)]


def test_options():
    model = nn.Conv2d(2, 2, 3)
    assert trace(model, (1, 2, 8, 8)).method == "fast"
    assert trace(model, (1, 2, 8, 8), capture="export").method == "export"
    a = analyze(model, (1, 2, 8, 8), capture="export")
    assert a.size == (3, 3)
    with pytest.raises(Exception, match="capture='nope'"):
        trace(model, (1, 2, 8, 8), capture="nope")


def test_unsupported_op_fast_says_so():
    model = Fn(lambda m, x: torch.ops.aten.cummax(x, -1)[0].sort(-1)[0])
    with pytest.raises(UnsupportedOpError, match="sort"):
        trace(model, (1, 2, 8, 8), capture="fast")
    with pytest.raises(UnsupportedOpError, match="sort"):
        trace(model, (1, 2, 8, 8))


def test_module_paths_and_source_lines_match_export():
    fast, ref = assert_same_analysis(ResNet((1, 1, 1, 1), width=2), (1, 3, 32, 32))
    rows_f = [(n.op, n.path, n.source) for n in fast.graph.nodes.values()]
    rows_e = [(n.path, n.source) for n in ref.graph.nodes.values()]
    assert [r[1:] for r in rows_f if r[0] != "getitem"][1:] == rows_e[1:]
