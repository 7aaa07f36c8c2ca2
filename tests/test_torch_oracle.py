"""The autograd oracle on hand cases (DESIGN.md §7) and its own machinery."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from models_torch import Fn  # noqa: E402
from torch import nn  # noqa: E402
from torch_oracle import (  # noqa: E402
                          probed_max_pooling,
                          rsp_from_boxes,
                          sum_pool,
                          support_boxes,
                          support_masks,
)


def d1():
    """DESIGN.md D1: conv k3 p1 s2 -> ReLU -> conv k1 -> maxpool k3 p1 s2."""
    return nn.Sequential(nn.Conv1d(1, 2, 3, 2, 1), nn.ReLU(), nn.Conv1d(2, 2, 1),
                         nn.MaxPool1d(3, 2, 1))


def test_d1_boxes_and_rsp():
    boxes = support_boxes(d1(), (1, 1, 13))
    assert boxes == [[(0, 3)], [(1, 7)], [(5, 11)], [(9, 12)]]
    assert rsp_from_boxes({(i,): b for i, b in enumerate(boxes)}, 0, 13) == (7, 4, 3)


def test_d6_misaligned_branches():
    """DESIGN.md D6: conv k5 p(2,1) s2 + (conv k3 -> conv k3) on n=8."""
    model = Fn(lambda m, x: m.a(F.pad(x, (2, 1))) + m.c(m.b(x)), a=nn.Conv1d(1, 1, 5, 2),
               b=nn.Conv1d(1, 1, 3), c=nn.Conv1d(1, 1, 3))
    assert support_boxes(model, (1, 1, 8)) == [[(0, 4)], [(0, 5)], [(2, 6)], [(3, 7)]]


def test_d2_d3_d4_gaps_and_overlaps():
    assert support_boxes(nn.Conv1d(1, 1, 1, 3), (1, 1, 8)) == [[(0, 0)], [(3, 3)], [(6, 6)]]
    assert support_boxes(nn.Conv1d(1, 1, 2, 3), (1, 1, 5)) == [[(0, 1)], [(3, 4)]]
    assert support_boxes(nn.Conv1d(1, 1, 5, 3), (1, 1, 8)) == [[(0, 4)], [(3, 7)]]


def test_border_clipping_at_every_layer():
    """DESIGN.md borders: conv k3 s2 p0 never reads input 7; o2 of the next conv is [2, 6]."""
    model = nn.Sequential(nn.Conv1d(1, 1, 3, 2), nn.Conv1d(1, 1, 3, 1, 1))
    assert support_boxes(model, (1, 1, 8), [(2,)]) == [[(2, 6)]]


CONFIGS = [(n, k, s, p, d, ceil) for n, k, s, d, ceil in itertools.product(
    (5, 6, 7, 10), (1, 2, 3), (1, 2, 3), (1, 2), (False, True)) for p in range(k // 2 + 1)
    if d * (k - 1) + 1 <= n + 2 * p]


@pytest.mark.parametrize("n,k,s,p,d,ceil", CONFIGS)
def test_sum_pool_has_max_pool_shape(n, k, s, p, d, ceil):
    x = torch.rand(1, 2, n, n + 1, dtype=torch.float64)
    want = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
    got = sum_pool(x, 2, k, s, p, d, ceil)
    assert got.shape == want.shape


def test_probed_max_pooling_reads_every_window_element():
    model = nn.Sequential(nn.MaxPool2d(3, 1, dilation=2), nn.AdaptiveMaxPool2d(2))
    _, masks = support_masks(model, (1, 2, 9, 9), [(0, 0)])
    assert masks[0][:7, :7].all() and not masks[0][7:, :].any()  # bin rows 0..2 of 5, dilated
    with probed_max_pooling():
        y, idx = F.max_pool2d(torch.rand(1, 1, 4, 4), 2, return_indices=True)
    assert y.shape == idx.shape == (1, 1, 2, 2)
    assert F.max_pool2d.__name__ == "max_pool2d"


def test_the_callers_model_is_untouched():
    model = nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2), nn.MaxPool2d(2)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    support_boxes(model, (1, 2, 8, 8))
    assert model.training and model[0].weight.dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_submodule_end_point_and_last_call():
    shared = nn.Conv1d(1, 1, 3, padding=1)
    model = Fn(lambda m, x: m.s(m.s(x)), s=shared)
    assert support_boxes(model, (1, 1, 9), [(4,)], output="s") == [[(2, 6)]]  # second call
    net = nn.Sequential(nn.Conv1d(1, 1, 3), nn.Sequential(nn.Conv1d(1, 1, 3), nn.ReLU()))
    assert support_boxes(net, (1, 1, 9), [(0,)], output="1/0") == [[(0, 4)]]


def test_channels_last_output_and_no_spatial_output():
    model = Fn(lambda m, x: m.c(x).permute(0, 2, 3, 1), c=nn.Conv2d(2, 2, (1, 3)))
    assert support_boxes(model, (1, 2, 4, 6), [(1, 2)], out_spatial_dims=(1, 2)) == \
        [[(1, 1), (2, 4)]]
    assert support_boxes(nn.Sequential(nn.Conv2d(2, 2, 3), nn.Flatten()), (1, 2, 5, 5),
                         out_spatial_dims=()) == [[(0, 4), (0, 4)]]


def test_fast_path_and_fallback_agree():
    conv = nn.Conv2d(2, 2, 3, 2, 1)
    fixed = Fn(lambda m, x: m.c(x).view(1, 2, 4, 4), c=conv)  # batch size fixed: fallback
    pos, a = support_masks(conv, (1, 2, 8, 8))
    _, b = support_masks(fixed, (1, 2, 8, 8), pos)
    assert (a == b).all()


def test_positions_reading_nothing_are_none():
    model = Fn(lambda m, x: F.pad(x, (2, 0)))
    assert support_boxes(model, (1, 1, 4), [(0,), (3,)]) == [[None], [(1, 1)]]


def test_draws_take_the_union():
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.GroupNorm(1, 2), nn.ReLU())
    _, one = support_masks(model, (1, 1, 9), draws=1)
    _, three = support_masks(model, (1, 1, 9), draws=3)
    assert (three >= one).all()
