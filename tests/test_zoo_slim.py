"""The TF-slim zoo (experiments/models/slim) held against the paper's published numbers.

The receptive fields are measured, not computed: an autograd oracle runs each model's own
forward code on a geometry-only float64 surrogate (every convolution averages its input
channels and applies a 1->1 box kernel with the layer's kernel, stride, dilation and
padding; batch norm and ReLU become identities; max pools become average pools over the same
padded window, so every input a window reads gets gradient). A one-hot cotangent at an
interior unit of an end-point gives the hull [lo, hi] of the nonzero input gradient along one
axis: r = hi - lo + 1, S = lo(x + 1) - lo(x), P = x*S - lo.

The deep nets' fields are far wider than 224, so no unit at 224 lies inside the image. The
measured axis is therefore n + delta long, delta a multiple of 64: every size along the net
then changes by an even amount at each of its (at most five) stride-2 layers, so TensorFlow's
'SAME' padding, which depends only on sizes modulo the stride, is the same as at n. The test
checks that premise too: it records every window layer's padding along the axis at n and at
n + delta and requires them equal.

Expected values are the paper's: its table (224) and the per-end-point table it links
(google-research/receptive_field RECEPTIVE_FIELD_TABLE.md, 224 and 321, TF-slim models).
"""

from __future__ import annotations

import functools
import math
import types

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from experiments.models.slim import ENDPOINTS, PAPER_ENDPOINT, SLIM_MODELS  # noqa: E402
from experiments.models.slim.layers import AvgPool2d, Conv2d, MaxPool2d  # noqa: E402

# The paper's table: r, S, P of the last spatial end-point at 224x224, same on both axes.
PAPER = {
    "alexnet_v2": (195, 32, 64),
    "vgg_16": (212, 32, 90),
    "mobilenet_v1": (315, 32, 126),
    "mobilenet_v1_075": (315, 32, 126),
    "resnet_v1_50": (483, 32, 239),
    "inception_v2": (699, 32, 318),
    "resnet_v1_101": (1027, 32, 511),
    "inception_v3": (1311, 32, 618),
    "resnet_v1_152": (1507, 32, 751),
    "resnet_v1_200": (1763, 32, 879),
    "inception_v4": (2071, 32, 998),
    "inception_resnet_v2": (3039, 32, 1482),
}

# The linked per-end-point table: model, end-point (module path), r, S, P at 224, P at 321
# (r and S are the same at both sizes). '-no-separable-conv' and '-same' are slim options.
TABLE = """
    alexnet_v2                     conv1                 11  4    0    0
    alexnet_v2                     pool1                 19  8    0    0
    alexnet_v2                     conv2                 51  8   16   16
    alexnet_v2                     conv3                 99 16   32   32
    alexnet_v2                     conv4                131 16   48   48
    alexnet_v2                     conv5                163 16   64   64
    alexnet_v2                     pool5                195 32   64   64
    vgg_a                          conv1.conv1_1          3  1    1    1
    vgg_a                          pool1                  4  2    1    1
    vgg_a                          conv2.conv2_1          8  2    3    3
    vgg_a                          pool2                 10  4    3    3
    vgg_a                          conv3.conv3_1         18  4    7    7
    vgg_a                          conv3.conv3_2         26  4   11   11
    vgg_a                          pool3                 30  8   11   11
    vgg_a                          conv4.conv4_1         46  8   19   19
    vgg_a                          conv4.conv4_2         62  8   27   27
    vgg_a                          pool4                 70 16   27   27
    vgg_a                          conv5.conv5_1        102 16   43   43
    vgg_a                          conv5.conv5_2        134 16   59   59
    vgg_a                          pool5                150 32   59   59
    vgg_16                         conv1.conv1_1          3  1    1    1
    vgg_16                         pool1                  6  2    2    2
    vgg_16                         conv2.conv2_1         10  2    4    4
    vgg_16                         pool2                 16  4    6    6
    vgg_16                         conv3.conv3_1         24  4   10   10
    vgg_16                         conv3.conv3_2         32  4   14   14
    vgg_16                         pool3                 44  8   18   18
    vgg_16                         conv4.conv4_1         60  8   26   26
    vgg_16                         conv4.conv4_2         76  8   34   34
    vgg_16                         pool4                100 16   42   42
    vgg_16                         conv5.conv5_1        132 16   58   58
    vgg_16                         conv5.conv5_2        164 16   74   74
    vgg_16                         pool5                212 32   90   90
    inception_v2                   Conv2d_1a_7x7          7  2    2    3
    inception_v2                   MaxPool_2a_3x3        11  4    2    5
    inception_v2                   Conv2d_2b_1x1         11  4    2    5
    inception_v2                   Conv2d_2c_3x3         19  4    6    9
    inception_v2                   MaxPool_3a_3x3        27  8    6   13
    inception_v2                   Mixed_3b              59  8   22   29
    inception_v2                   Mixed_3c              91  8   38   45
    inception_v2                   Mixed_4a             123 16   46   61
    inception_v2                   Mixed_4b             187 16   78   93
    inception_v2                   Mixed_4c             251 16  110  125
    inception_v2                   Mixed_4d             315 16  142  157
    inception_v2                   Mixed_4e             379 16  174  189
    inception_v2                   Mixed_5a             443 32  190  221
    inception_v2                   Mixed_5b             571 32  254  285
    inception_v2                   Mixed_5c             699 32  318  349
    inception_v2-no-separable-conv Conv2d_1a_7x7          7  2    2    3
    inception_v2-no-separable-conv MaxPool_2a_3x3        11  4    2    5
    inception_v2-no-separable-conv Conv2d_2b_1x1         11  4    2    5
    inception_v2-no-separable-conv Conv2d_2c_3x3         19  4    6    9
    inception_v2-no-separable-conv MaxPool_3a_3x3        27  8    6   13
    inception_v2-no-separable-conv Mixed_3b              59  8   22   29
    inception_v2-no-separable-conv Mixed_3c              91  8   38   45
    inception_v2-no-separable-conv Mixed_4a             123 16   46   61
    inception_v2-no-separable-conv Mixed_4b             187 16   78   93
    inception_v2-no-separable-conv Mixed_4c             251 16  110  125
    inception_v2-no-separable-conv Mixed_4d             315 16  142  157
    inception_v2-no-separable-conv Mixed_4e             379 16  174  189
    inception_v2-no-separable-conv Mixed_5a             443 32  190  221
    inception_v2-no-separable-conv Mixed_5b             571 32  254  285
    inception_v2-no-separable-conv Mixed_5c             699 32  318  349
    inception_v3                   Conv2d_1a_3x3          3  2    0    0
    inception_v3                   Conv2d_2a_3x3          7  2    0    0
    inception_v3                   Conv2d_2b_3x3         11  2    2    2
    inception_v3                   MaxPool_3a_3x3        15  4    2    2
    inception_v3                   Conv2d_3b_1x1         15  4    2    2
    inception_v3                   Conv2d_4a_3x3         23  4    2    2
    inception_v3                   MaxPool_5a_3x3        31  8    2    2
    inception_v3                   Mixed_5b              63  8   18   18
    inception_v3                   Mixed_5c              95  8   34   34
    inception_v3                   Mixed_5d             127  8   50   50
    inception_v3                   Mixed_6a             159 16   58   58
    inception_v3                   Mixed_6b             351 16  154  154
    inception_v3                   Mixed_6c             543 16  250  250
    inception_v3                   Mixed_6d             735 16  346  346
    inception_v3                   Mixed_6e             927 16  442  442
    inception_v3                   Mixed_7a            1055 32  490  490
    inception_v3                   Mixed_7b            1183 32  554  554
    inception_v3                   Mixed_7c            1311 32  618  618
    inception_v4                   Conv2d_1a_3x3          3  2    0    0
    inception_v4                   Conv2d_2a_3x3          7  2    0    0
    inception_v4                   Conv2d_2b_3x3         11  2    2    2
    inception_v4                   Mixed_3a              15  4    2    2
    inception_v4                   Mixed_4a              47  4   14   14
    inception_v4                   Mixed_5a              55  8   14   14
    inception_v4                   Mixed_5b              87  8   30   30
    inception_v4                   Mixed_5c             119  8   46   46
    inception_v4                   Mixed_5d             151  8   62   62
    inception_v4                   Mixed_5e             183  8   78   78
    inception_v4                   Mixed_6a             215 16   86   86
    inception_v4                   Mixed_6b             407 16  182  182
    inception_v4                   Mixed_6c             599 16  278  278
    inception_v4                   Mixed_6d             791 16  374  374
    inception_v4                   Mixed_6e             983 16  470  470
    inception_v4                   Mixed_6f            1175 16  566  566
    inception_v4                   Mixed_6g            1367 16  662  662
    inception_v4                   Mixed_6h            1559 16  758  758
    inception_v4                   Mixed_7a            1687 32  806  806
    inception_v4                   Mixed_7b            1815 32  870  870
    inception_v4                   Mixed_7c            1943 32  934  934
    inception_v4                   Mixed_7d            2071 32  998  998
    inception_resnet_v2            Conv2d_1a_3x3          3  2    0    0
    inception_resnet_v2            Conv2d_2a_3x3          7  2    0    0
    inception_resnet_v2            Conv2d_2b_3x3         11  2    2    2
    inception_resnet_v2            MaxPool_3a_3x3        15  4    2    2
    inception_resnet_v2            Conv2d_3b_1x1         15  4    2    2
    inception_resnet_v2            Conv2d_4a_3x3         23  4    2    2
    inception_resnet_v2            MaxPool_5a_3x3        31  8    2    2
    inception_resnet_v2            Mixed_5b              63  8   18   18
    inception_resnet_v2            Mixed_6a             415 16  186  186
    inception_resnet_v2            PreAuxLogits        2335 16 1146 1146
    inception_resnet_v2            Mixed_7a            2399 32 1162 1162
    inception_resnet_v2            Conv2d_7b_1x1       3039 32 1482 1482
    inception_resnet_v2-same       Conv2d_1a_3x3          3  2    0    1
    inception_resnet_v2-same       Conv2d_2a_3x3          7  2    2    3
    inception_resnet_v2-same       Conv2d_2b_3x3         11  2    4    5
    inception_resnet_v2-same       MaxPool_3a_3x3        15  4    4    7
    inception_resnet_v2-same       Conv2d_3b_1x1         15  4    4    7
    inception_resnet_v2-same       Conv2d_4a_3x3         23  4    8   11
    inception_resnet_v2-same       MaxPool_5a_3x3        31  8    8   15
    inception_resnet_v2-same       Mixed_5b              63  8   24   31
    inception_resnet_v2-same       Mixed_6a             415 16  192  207
    inception_resnet_v2-same       PreAuxLogits        2335 16 1152 1167
    inception_resnet_v2-same       Mixed_7a            2399 32 1168 1199
    inception_resnet_v2-same       Conv2d_7b_1x1       3039 32 1488 1519
    mobilenet_v1                   Conv2d_0               3  2    0    1
    mobilenet_v1                   Conv2d_1_pointwise     7  2    2    3
    mobilenet_v1                   Conv2d_2_pointwise    11  4    2    5
    mobilenet_v1                   Conv2d_3_pointwise    19  4    6    9
    mobilenet_v1                   Conv2d_4_pointwise    27  8    6   13
    mobilenet_v1                   Conv2d_5_pointwise    43  8   14   21
    mobilenet_v1                   Conv2d_6_pointwise    59 16   14   29
    mobilenet_v1                   Conv2d_7_pointwise    91 16   30   45
    mobilenet_v1                   Conv2d_8_pointwise   123 16   46   61
    mobilenet_v1                   Conv2d_9_pointwise   155 16   62   77
    mobilenet_v1                   Conv2d_10_pointwise  187 16   78   93
    mobilenet_v1                   Conv2d_11_pointwise  219 16   94  109
    mobilenet_v1                   Conv2d_12_pointwise  251 32   94  125
    mobilenet_v1                   Conv2d_13_pointwise  315 32  126  157
    mobilenet_v1_075               Conv2d_0               3  2    0    1
    mobilenet_v1_075               Conv2d_1_pointwise     7  2    2    3
    mobilenet_v1_075               Conv2d_2_pointwise    11  4    2    5
    mobilenet_v1_075               Conv2d_3_pointwise    19  4    6    9
    mobilenet_v1_075               Conv2d_4_pointwise    27  8    6   13
    mobilenet_v1_075               Conv2d_5_pointwise    43  8   14   21
    mobilenet_v1_075               Conv2d_6_pointwise    59 16   14   29
    mobilenet_v1_075               Conv2d_7_pointwise    91 16   30   45
    mobilenet_v1_075               Conv2d_8_pointwise   123 16   46   61
    mobilenet_v1_075               Conv2d_9_pointwise   155 16   62   77
    mobilenet_v1_075               Conv2d_10_pointwise  187 16   78   93
    mobilenet_v1_075               Conv2d_11_pointwise  219 16   94  109
    mobilenet_v1_075               Conv2d_12_pointwise  251 32   94  125
    mobilenet_v1_075               Conv2d_13_pointwise  315 32  126  157
    resnet_v1_50                   block1                35  8   15   17
    resnet_v1_50                   block2                99 16   47   49
    resnet_v1_50                   block3               291 32  143  145
    resnet_v1_50                   block4               483 32  239  241
    resnet_v1_101                  block1                35  8   15   17
    resnet_v1_101                  block2                99 16   47   49
    resnet_v1_101                  block3               835 32  415  417
    resnet_v1_101                  block4              1027 32  511  513
    resnet_v1_152                  block1                35  8   15   17
    resnet_v1_152                  block2               163 16   79   81
    resnet_v1_152                  block3              1315 32  655  657
    resnet_v1_152                  block4              1507 32  751  753
    resnet_v1_200                  block1                35  8   15   17
    resnet_v1_200                  block2               419 16  207  209
    resnet_v1_200                  block3              1571 32  783  785
    resnet_v1_200                  block4              1763 32  879  881
    resnet_v2_50                   block1                35  8   15   17
    resnet_v2_50                   block2                99 16   47   49
    resnet_v2_50                   block3               291 32  143  145
    resnet_v2_50                   block4               483 32  239  241
    resnet_v2_101                  block1                35  8   15   17
    resnet_v2_101                  block2                99 16   47   49
    resnet_v2_101                  block3               835 32  415  417
    resnet_v2_101                  block4              1027 32  511  513
    resnet_v2_152                  block1                35  8   15   17
    resnet_v2_152                  block2               163 16   79   81
    resnet_v2_152                  block3              1315 32  655  657
    resnet_v2_152                  block4              1507 32  751  753
    resnet_v2_200                  block1                35  8   15   17
    resnet_v2_200                  block2               419 16  207  209
    resnet_v2_200                  block3              1571 32  783  785
    resnet_v2_200                  block4              1763 32  879  881
"""

VARIANTS = {
    "inception_v2-no-separable-conv": ("inception_v2", {"use_separable_conv": False}),
    "inception_resnet_v2-same": ("inception_resnet_v2", {"align_feature_maps": True}),
}


def published() -> dict[str, dict[str, tuple[int, int, int, int]]]:
    rows: dict[str, dict[str, tuple[int, int, int, int]]] = {}
    for line in TABLE.strip().splitlines():
        model, endpoint, *values = line.split()
        r, s, p224, p321 = map(int, values)
        rows.setdefault(model, {})[endpoint] = (r, s, p224, p321)
    return rows


PUBLISHED = published()


HEAVY = ("resnet_v1_152", "resnet_v1_200", "resnet_v2_152", "resnet_v2_200",
         "inception_resnet_v2-same")


def heavy(names):
    """The deepest nets run with ``pytest -m slow`` (test_zoo_analytic covers them in CI)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]


def factory(model: str):
    base, kwargs = VARIANTS.get(model, (model, {}))
    return functools.partial(SLIM_MODELS[base], **kwargs)


# ---- the oracle -------------------------------------------------------------------------

def channel_mean(module: nn.Module, args: tuple) -> tuple:
    return (args[0].mean(1, keepdim=True),)


def box_pool(self: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    flat = [p for before_after in reversed(self.pads(x.shape[2:])) for p in before_after]
    return F.avg_pool2d(F.pad(x, flat), self.kernel_size, self.stride)


def surrogate(model: nn.Module) -> nn.Module:
    """The geometry-only float64 version of ``model`` (modified in place)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.BatchNorm2d, nn.ReLU, nn.ReLU6)):
                setattr(parent, name, nn.Identity())
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            box = torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=torch.float64)
            m.weight = nn.Parameter(box, requires_grad=False)
            m.bias = None
            m.groups = 1
            m.register_forward_pre_hook(channel_mean)
        elif isinstance(m, nn.MaxPool2d):
            m.forward = types.MethodType(box_pool, m)
    return model.eval()


class Stop(Exception):
    """Raised once every wanted end-point has been seen (the head is never run)."""


def run_to(model: nn.Module, x: torch.Tensor, names: tuple[str, ...]) -> dict:
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, args, out):
            seen[name] = out
            if len(seen) == len(names):
                raise Stop
        return hook

    handles = [model.get_submodule(n).register_forward_hook(keep(n)) for n in names]
    try:
        model(x)
    except Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    assert set(seen) == set(names), f"end-points never reached: {set(names) - set(seen)}"
    return seen


def window_pads(model: nn.Module, names: tuple[str, ...], spatial: list[int], axis: int) -> list:
    """(before, after) padding of every window layer along ``axis``, in execution order."""
    pads: list = []
    handles = [m.register_forward_pre_hook(
        lambda mod, args: pads.append(mod.pads(args[0].shape[2:])[axis]))
        for m in model.modules() if isinstance(m, (Conv2d, MaxPool2d, AvgPool2d))]
    try:
        run_to(model, torch.ones(1, 1, *spatial, dtype=torch.float64), names)
    finally:
        for h in handles:
            h.remove()
    return pads


def measure(model: nn.Module, names: tuple[str, ...], long: int, short: int,
            axis: int) -> dict[str, tuple[int, int, int]]:
    """r, S, P along ``axis`` (of length ``long``) for each end-point, from units x, x + 1
    at the middle of the end-point's output; two batch entries per end-point, one backward."""
    spatial = [short, short]
    spatial[axis] = long
    x = torch.ones(2 * len(names), 1, *spatial, dtype=torch.float64, requires_grad=True)
    outs = run_to(model, x, names)
    total = x.new_zeros(())
    mids = {}
    for i, name in enumerate(names):
        y = outs[name]
        mids[name] = y.shape[2 + axis] // 2
        for j in (0, 1):
            pos = [y.shape[2] // 2, y.shape[3] // 2]
            pos[axis] = mids[name] + j
            total = total + y[2 * i + j, :, pos[0], pos[1]].sum()
    total.backward()
    support = x.grad[:, 0].abs().sum(dim=2 - axis) > 0  # (batch, long)
    result = {}
    for i, name in enumerate(names):
        (lo, hi), (lo1, hi1) = [(int(idx.min()), int(idx.max())) for idx in
                                (torch.nonzero(support[2 * i + j]).flatten() for j in (0, 1))]
        assert 0 < lo and hi < long - 1, f"{name}: unit region [{lo}, {hi}] touches the border"
        stride = lo1 - lo
        if hi1 < long - 1:  # unit x + 1's right edge unclipped too
            assert hi1 - hi == stride, f"{name}: adjacent units disagree on the stride"
        result[name] = (hi - lo + 1, stride, mids[name] * stride - lo)
    return result


# the other axis: long enough for the net to reach its last end-point ('VALID' stems need 75)
SHORT = {"alexnet_v2": 75, "inception_v3": 75, "inception_v4": 75, "inception_resnet_v2": 75}


@functools.cache
def measured(model: str, n: int, axis: int) -> dict[str, tuple[int, int, int]]:
    """r, S, P per end-point at input size n along ``axis``, measured on an axis n + delta
    long after checking that every TF padding along it is the one at n."""
    with torch.device("meta"):
        net = factory(model)()
    net = surrogate(net.double())
    names = ENDPOINTS[model.split("-")[0]]
    widest = max(r for r, *_ in PUBLISHED[model].values())
    delta = 64 * math.ceil((widest + 64) / 64)
    short = SHORT.get(model, 32)
    at_n, at_long = ([short, short], [short, short])
    at_n[axis], at_long[axis] = n, n + delta
    assert window_pads(net, names, at_n, axis) == window_pads(net, names, at_long, axis)
    return measure(net, names, n + delta, short, axis)


# ---- TF padding, pooling semantics ------------------------------------------------------

# TF's definition: out = ceil(n / stride), total = max((out - 1) * stride + span - n, 0).
@pytest.mark.parametrize(("n", "kernel", "stride", "dilation", "expected"), [
    (224, 3, 2, 1, (0, 1)),    # even size, stride 2: the extra pixel goes after
    (225, 3, 2, 1, (1, 1)),
    (224, 7, 2, 1, (2, 3)),
    (321, 7, 2, 1, (3, 3)),
    (112, 3, 1, 1, (1, 1)),    # stride 1: k - 1, whatever the size
    (224, 1, 2, 1, (0, 0)),    # resnet's subsample and 1x1 projections pad nothing
    (10, 3, 1, 2, (2, 2)),     # dilation: the span counts
    (5, 4, 3, 1, (1, 1)),
    (6, 4, 3, 1, (0, 1)),
    (2, 7, 4, 1, (2, 3)),      # the input can be smaller than the kernel
])
def test_tf_same_padding(n, kernel, stride, dilation, expected):
    conv = Conv2d(1, 1, (1, kernel), (1, stride), dilation=(1, dilation), padding="SAME")
    assert conv.pads((1, n)) == ((0, 0), expected)
    y = conv(torch.zeros(1, 1, 1, n))
    assert y.shape[-1] == -(-n // stride)  # TF 'SAME' output size: ceil(n / stride)


def test_explicit_and_valid_padding():
    conv = Conv2d(1, 1, 7, 2, padding=((3, 3), (3, 3)))  # resnet_utils.conv2d_same, 7x7/2
    assert conv(torch.zeros(1, 1, 224, 225)).shape[-2:] == (112, 113)
    valid = Conv2d(1, 1, 3, 2, padding="VALID")
    assert valid.pads((224, 225)) == ((0, 0), (0, 0))
    assert valid(torch.zeros(1, 1, 224, 225)).shape[-2:] == (111, 112)


@pytest.mark.parametrize(("n", "max_expected", "avg_expected"), [
    (6, [-1, -3, -5], [-2, -4, -5.5]),              # pads (0, 1): the last window is cut
    (7, [-1, -2, -4, -6], [-1.5, -3, -5, -6.5]),    # pads (1, 1)
])
def test_tf_same_pools_ignore_padding(n, max_expected, avg_expected):
    x = -torch.arange(1.0, n + 1).reshape(1, 1, 1, n)  # all negative: a zero pad would win
    got_max = MaxPool2d((1, 3), (1, 2), padding="SAME")(x).flatten().tolist()
    got_avg = AvgPool2d((1, 3), (1, 2), padding="SAME")(x).flatten().tolist()
    assert got_max == max_expected
    assert got_avg == pytest.approx(avg_expected)


def test_tf_same_avg_pool_stride_one_counts_real_pixels_only():
    x = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    got = AvgPool2d((1, 3), 1, padding="SAME")(x).flatten().tolist()
    assert got == pytest.approx([1.5, 2.0, 3.0, 3.5])


# ---- the oracle on the paper's figure (DESIGN.md section 7, D1) -------------------------

def test_oracle_reproduces_figure_d1():
    # conv k3 s2 (pads 1, 1 at n=13) -> ReLU -> conv k1 -> max pool k3 s2 (pads 1, 1 at n=7)
    net = nn.Sequential(Conv2d(1, 1, (1, 3), (1, 2)), nn.ReLU(), Conv2d(1, 1, 1),
                        MaxPool2d((1, 3), (1, 2), padding="SAME"))
    net = surrogate(net.double())
    # widths 7, 7, 4: units 2 and 3 of 4; unit 2 reads [5, 11], fully inside [0, 12]
    assert measure(net, ("3",), 13, 1, axis=1) == {"3": (7, 4, 3)}


# ---- the models -------------------------------------------------------------------------

# spatial size of the last end-point at 224 (slim's comments and docstrings)
FINAL_MAP_224 = {"alexnet_v2": 5, "vgg_a": 7, "vgg_16": 7, "mobilenet_v1": 7,
                 "mobilenet_v1_075": 7, "inception_v2": 7, "inception_v3": 5,
                 "inception_v4": 5, "inception_resnet_v2": 5}


@pytest.mark.parametrize("name", heavy(SLIM_MODELS))
def test_forward_224(name):
    model = SLIM_MODELS[name]()
    assert not model.training
    final = model.get_submodule(PAPER_ENDPOINT[name])
    seen = []
    handle = final.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 224, 224))
    handle.remove()
    assert logits.shape == (1, 1000)
    side = FINAL_MAP_224.get(name, 7)  # resnets: 7x7 at block4
    assert seen[0][-2:] == (side, side)


def test_num_classes_keyword():
    with torch.no_grad():
        assert SLIM_MODELS["mobilenet_v1"](num_classes=10)(torch.zeros(1, 3, 224, 224)).shape \
            == (1, 10)


def test_resnet_feature_map_sizes():
    # resnet_v1.py: 321 -> 11x11 and 225 -> 8x8 at the last block (nominal stride 32)
    model = SLIM_MODELS["resnet_v1_50"]()
    for n, side in ((321, 11), (225, 8)):
        with torch.no_grad():
            out = run_to(model, torch.zeros(1, 3, n, n), ("block4",))["block4"]
        assert out.shape[-2:] == (side, side)


def test_registry():
    assert set(PAPER) <= set(SLIM_MODELS)
    assert set(ENDPOINTS) == set(PAPER_ENDPOINT) == set(SLIM_MODELS)
    for name in ("vgg_16", "inception_resnet_v2"):
        model = SLIM_MODELS[name]()
        for endpoint in ENDPOINTS[name]:
            model.get_submodule(endpoint)
        assert PAPER_ENDPOINT[name] == ENDPOINTS[name][-1]


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_table(name):
    endpoint = PAPER_ENDPOINT[name]
    for axis in (0, 1):
        assert measured(name, 224, axis)[endpoint] == PAPER[name], f"axis {axis}"


@pytest.mark.parametrize(("name", "p224", "p321"), [
    ("resnet_v1_50", 239, 241),          # pool1: 'SAME' max pool at 112 (0, 1) vs 161 (1, 1)
    ("mobilenet_v1", 126, 157),          # every stride-2 layer is 'SAME'
    ("inception_v2", 318, 349),
    ("inception_v3", 618, 618),          # strided layers 'VALID', stride-1 'SAME' fixed
    ("inception_v4", 998, 998),
    ("inception_resnet_v2", 1482, 1482),
    ("vgg_16", 90, 90),
    ("alexnet_v2", 64, 64),
])
def test_padding_depends_on_input_size_as_tf_same_says(name, p224, p321):
    endpoint = PAPER_ENDPOINT[name]
    assert measured(name, 224, 1)[endpoint][2] == p224
    assert measured(name, 321, 1)[endpoint][2] == p321


@pytest.mark.parametrize("model", heavy(PUBLISHED))
def test_every_published_endpoint(model):
    rows = PUBLISHED[model]
    assert set(rows) <= set(ENDPOINTS[model.split("-")[0]])
    for n, p_index in ((224, 2), (321, 3)):
        for axis in (1,):  # the nets are square: test_zoo_analytic checks both axes agree
            got = measured(model, n, axis)
            for endpoint, row in rows.items():
                expected = (row[0], row[1], row[p_index])
                assert got[endpoint] == expected, f"{endpoint} at {n}, axis {axis}"
