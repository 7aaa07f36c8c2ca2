"""Hypothesis-generated torch networks (branches, merges, the window rules) vs the oracle.

A network is a list of steps over a growing list of tensors (2 channels each); every step
draws its parameters valid for the shape it reads, so each example traces. Exact regions of
every output position must equal the gradient support's boxes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402
from torch_oracle import compare  # noqa: E402

C = 2


class RandomNet(nn.Module):
    """Runs ``steps``: (op, input indices, params, layer) appending one tensor each."""

    def __init__(self, steps: list):
        super().__init__()
        self.steps = [(op, ins, params) for op, ins, params, _ in steps]
        self.layers = nn.ModuleList([layer or nn.Identity() for *_, layer in steps])

    def forward(self, x):
        values = [x]
        for (op, ins, p), layer in zip(self.steps, self.layers):
            values.append(APPLY[op](layer, p, *[values[i] for i in ins]))
        return values[-1]


def _resize(layer, p, a, b):
    return F.interpolate(b, size=a.shape[2:], mode="nearest")


APPLY = {
    "conv": lambda layer, p, x: layer(x),
    "tconv": lambda layer, p, x: layer(x),
    "maxpool": lambda layer, p, x: F.max_pool2d(x, **p),
    "avgpool": lambda layer, p, x: F.avg_pool2d(x, **p),
    "upsample": lambda layer, p, x: F.interpolate(x, **p),
    "pad": lambda layer, p, x: F.pad(x, **p),
    "slice": lambda layer, p, x: x[:, :, p["h"], p["w"]],
    "shuffle": lambda layer, p, x: F.pixel_shuffle(layer(x), 2),
    "unshuffle": lambda layer, p, x: layer(F.pixel_unshuffle(x, 2)),
    "adaptive": lambda layer, p, x: F.adaptive_avg_pool2d(x, p["size"]),
    "act": lambda layer, p, x: getattr(torch, p["fn"])(x),
    "flip": lambda layer, p, x: x.flip(p["dims"]),
    "add": lambda layer, p, a, b: a + _resize(layer, p, a, b),
    "cat": lambda layer, p, a, b: layer(torch.cat([a, _resize(layer, p, a, b)], 1)),
    "gate": lambda layer, p, x: x * x.mean(p["dim"], keepdim=True),
}


def draw_step(draw, shapes: list) -> tuple | None:
    op = draw(st.sampled_from(sorted(APPLY)))
    i = draw(st.integers(0, len(shapes) - 1))
    h, w = shapes[i]
    ints = st.integers
    if op == "conv":
        k = (draw(ints(1, 3)), draw(ints(1, 4)))
        d = (draw(ints(1, 2)), draw(ints(1, 2)))
        s = (draw(ints(1, 2)), draw(ints(1, 2)))
        pad = tuple(draw(ints(0, (dd * (kk - 1)) // 2)) for kk, dd in zip(k, d))
        mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        if any(dd * (kk - 1) + 1 > n + 2 * pp for kk, dd, n, pp in zip(k, d, (h, w), pad)) or \
                (mode != "zeros" and any(pp >= n for pp, n in zip(pad, (h, w)))):
            return None
        return op, [i], {}, nn.Conv2d(C, C, k, s, pad, d, padding_mode=mode)
    if op == "tconv":
        k, s = draw(ints(1, 3)), draw(ints(1, 2))
        d = draw(ints(1, 2))
        p = draw(ints(0, (d * (k - 1)) // 2))
        op_ = draw(ints(0, s - 1)) if s > 1 else 0
        return op, [i], {}, nn.ConvTranspose2d(C, C, k, s, p, op_, dilation=d)
    if op in ("maxpool", "avgpool"):
        k, s = draw(ints(1, 3)), draw(ints(1, 2))
        p = draw(ints(0, k // 2))
        params = dict(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans()))
        if op == "maxpool":
            params["dilation"] = draw(ints(1, 2))
        span = params.get("dilation", 1) * (k - 1) + 1
        if span > min(h, w) + 2 * p:
            return None
        return op, [i], params, None
    if op == "upsample":
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "bilinear"]))
        params: dict = {"mode": mode}
        if draw(st.booleans()):
            params["scale_factor"] = draw(st.sampled_from([0.5, 1.5, 2.0, 2.5]))
        else:
            params["size"] = (draw(ints(2, 14)), draw(ints(2, 14)))
        if mode == "bilinear":
            params["align_corners"] = draw(st.booleans())
        if "scale_factor" in params and min(h, w) * params["scale_factor"] < 2:
            return None
        return op, [i], params, None
    if op == "pad":
        mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        lo = -1 if mode == "constant" else 0
        pads = tuple(draw(ints(lo, 2)) for _ in range(4))
        if mode != "constant" and max(pads) >= min(h, w) or h + pads[2] + pads[3] < 1 or \
                w + pads[0] + pads[1] < 1:
            return None
        return op, [i], {"pad": pads, "mode": mode}, None
    if op == "slice":
        def sl(n):
            a = draw(ints(0, n - 1))
            return slice(a, draw(ints(a + 1, n)), draw(ints(1, 2)))
        return op, [i], {"h": sl(h), "w": sl(w)}, None
    if op == "shuffle":
        return op, [i], {}, nn.Conv2d(C, 4 * C, 1)
    if op == "unshuffle":
        if h % 2 or w % 2:
            return None
        return op, [i], {}, nn.Conv2d(4 * C, C, 1)
    if op == "adaptive":
        return op, [i], {"size": (draw(ints(1, h)), draw(ints(1, w)))}, None
    if op == "act":
        return op, [i], {"fn": draw(st.sampled_from(["relu", "sigmoid", "tanh"]))}, None
    if op == "flip":
        return op, [i], {"dims": draw(st.sampled_from([[2], [3], [2, 3]]))}, None
    if op == "gate":
        return op, [i], {"dim": draw(st.sampled_from([2, 3, (2, 3)]))}, None
    j = draw(ints(0, len(shapes) - 1))  # merges: the second input resized to the first
    return op, [i, j], {}, nn.Conv2d(2 * C, C, 1) if op == "cat" else None


@st.composite
def networks(draw):
    shape = (draw(st.integers(5, 12)), draw(st.integers(5, 12)))
    shapes, steps = [shape], []
    x = torch.zeros(1, C, *shape)
    values = [x]
    for _ in range(draw(st.integers(2, 6))):
        step = draw_step(draw, shapes)
        if step is None:
            continue
        op, ins, params, layer = step
        with torch.no_grad():
            y = APPLY[op](layer, params, *[values[i] for i in ins])
        if min(y.shape[2:]) < 1 or max(y.shape[2:]) > 40:
            continue
        steps.append(step)
        values.append(y)
        shapes.append(tuple(y.shape[2:]))
    if not steps:
        steps.append(("act", [0], {"fn": "relu"}, None))
    return shape, steps


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks())
def test_random_networks_match_the_oracle(net):
    shape, steps = net
    torch.manual_seed(0)
    model = RandomNet(steps)
    compare(model, (1, C, *shape))
