"""One case per torch rule (and per variant): exact regions vs the autograd oracle.

Every case names the rule it exercises; the test checks that its trace really uses that rule,
and a meta-test fails when a registered rule has no case. Expected values come from the
oracle (autograd through the real op), never from the code under test.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from models_torch import Fn  # noqa: E402
from torch import nn  # noqa: E402
from torch_oracle import compare  # noqa: E402

from analytic.frontends.torch import RULES  # noqa: E402
from analytic.frontends.torch_rules import lookup  # noqa: E402

CASES: list = []


def case(rule: str, id: str, make, shape, *, exact: bool = True, rsp: bool = False,
         output: str | None = None, draws: int = 1):
    CASES.append(pytest.param(rule, make, shape, exact, rsp, output, draws, id=f"{rule}-{id}"))


def seq(*mods: nn.Module) -> nn.Module:
    return nn.Sequential(*mods)


def gate(x):
    return x.mean((2, 3), keepdim=True)


# ---- convolution ------------------------------------------------------------------------------
case("convolution", "1d-k5-s2-p3-d2-groups", lambda: nn.Conv1d(2, 4, 5, 2, 3, dilation=2,
                                                                groups=2), (1, 2, 23), rsp=True)
case("convolution", "2d-nonsquare-k3x5-s2x1-p1x2-d1x2-odd",
     lambda: nn.Conv2d(2, 3, (3, 5), (2, 1), (1, 2), (1, 2)), (1, 2, 17, 19), rsp=True)
case("convolution", "2d-same-even-k4x2-d1x3",
     lambda: nn.Conv2d(2, 2, (4, 2), padding="same", dilation=(1, 3)), (1, 2, 9, 11), rsp=True)
case("convolution", "2d-valid", lambda: nn.Conv2d(2, 2, 3, padding="valid"), (1, 2, 9, 8))
case("convolution", "2d-asymmetric-pad",
     lambda: Fn(lambda m, x: m.c(F.pad(x, (0, 2, 3, 1))), c=nn.Conv2d(2, 2, 3, 2)),
     (1, 2, 13, 12), rsp=True)
for mode in ("reflect", "replicate", "circular"):
    case("convolution", f"2d-padding-mode-{mode}",
         lambda mode=mode: nn.Conv2d(2, 2, (3, 5), padding=(1, 2), padding_mode=mode),
         (1, 2, 7, 9))
case("convolution", "3d-k3x1x2-s1x2x2", lambda: nn.Conv3d(2, 2, (3, 1, 2), (1, 2, 2), (1, 0, 1)),
     (1, 2, 7, 8, 9), rsp=True)
case("convolution", "functional-buffer-weight",
     lambda: Fn(lambda m, x: F.conv2d(x, m.w, stride=(1, 2), padding=(2, 0)),
                buffers={"w": torch.ones(2, 2, 5, 3)}), (1, 2, 11, 12), rsp=True)
case("convolution", "unbatched", lambda: nn.Conv2d(2, 2, 3, 2, 1), (2, 9, 9))

# ---- transposed convolution ---------------------------------------------------------------------
case("conv_transpose", "1d-k4-s3-p1-op2",
     lambda: nn.ConvTranspose1d(2, 2, 4, 3, 1, output_padding=2), (1, 2, 7))
case("conv_transpose", "2d-k3x4-s2x3-p1x0-op1x2-d2x1-groups",
     lambda: nn.ConvTranspose2d(2, 4, (3, 4), (2, 3), (1, 0), output_padding=(1, 2),
                                groups=2, dilation=(2, 1)), (1, 2, 5, 4))
case("conv_transpose", "3d-k2-s2", lambda: nn.ConvTranspose3d(2, 2, 2, 2), (1, 2, 3, 4, 3))

# ---- pooling ----------------------------------------------------------------------------------
case("pooling", "max2d-k3-s2-p1-ceil", lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True),
     (1, 2, 16, 17), rsp=True)
case("pooling", "max2d-ceil-drops-last-window", lambda: nn.MaxPool2d(2, 2, 1, ceil_mode=True),
     (1, 2, 5, 7))
case("pooling", "max2d-k2x3-s1x2-d2", lambda: nn.MaxPool2d((2, 3), (1, 2), dilation=2),
     (1, 2, 9, 11), rsp=True)
case("pooling", "max2d-with-indices",
     lambda: Fn(lambda m, x: F.max_pool2d(x, 3, 2, 1, return_indices=True)[0]), (1, 2, 9, 9))
case("pooling", "max1d-k4-s3-ceil", lambda: nn.MaxPool1d(4, 3, ceil_mode=True), (1, 2, 14))
case("pooling", "max3d-k2-s2-p1", lambda: nn.MaxPool3d(2, 2, 1), (1, 1, 5, 6, 7))
case("pooling", "avg2d-k3-s2-p1-ceil-nopad",
     lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (1, 2, 10, 11),
     rsp=True)
case("pooling", "avg1d-k3-s2", lambda: nn.AvgPool1d(3, 2), (1, 2, 12))
case("pooling", "avg3d-k2x3x1", lambda: nn.AvgPool3d((2, 3, 1), (2, 1, 1)), (1, 1, 6, 7, 5))
case("pooling", "lp2d-k3-s2", lambda: nn.LPPool2d(2, 3, 2), (1, 2, 11, 12), rsp=True)
case("pooling", "lp1d-k2", lambda: nn.LPPool1d(3, 2), (1, 2, 9))

# ---- adaptive pooling ---------------------------------------------------------------------------
case("adaptive_pooling", "avg2d-uneven-5x3", lambda: nn.AdaptiveAvgPool2d((5, 3)),
     (1, 2, 13, 11))
case("adaptive_pooling", "avg2d-divisible-4", lambda: nn.AdaptiveAvgPool2d(4), (1, 2, 16, 8),
     rsp=True)
case("adaptive_pooling", "max2d-uneven-3x4", lambda: nn.AdaptiveMaxPool2d((3, 4)), (1, 2, 10, 9))
case("adaptive_pooling", "avg1d-global", lambda: nn.AdaptiveAvgPool1d(1), (1, 2, 10))
case("adaptive_pooling", "avg2d-global-on-1-pixel-axis", lambda: nn.AdaptiveAvgPool2d(1),
     (1, 2, 1, 6))
case("adaptive_pooling", "avg3d-2x3x1", lambda: nn.AdaptiveAvgPool3d((2, 3, 1)), (1, 1, 5, 7, 4))
case("adaptive_pooling", "interpolate-area",
     lambda: Fn(lambda m, x: F.interpolate(x, size=(4, 3), mode="area")), (1, 2, 10, 7))

# ---- upsampling ---------------------------------------------------------------------------------


def interp(**kw):
    return lambda: Fn(lambda m, x: F.interpolate(x, **kw))


case("upsample", "nearest-scale2", interp(scale_factor=2, mode="nearest"), (1, 2, 5, 6))
case("upsample", "nearest-scale1.7", interp(scale_factor=1.7, mode="nearest"), (1, 2, 5, 7))
case("upsample", "nearest-size13x9", interp(size=(13, 9), mode="nearest"), (1, 2, 5, 7))
case("upsample", "nearest-down", interp(size=(3, 4), mode="nearest"), (1, 2, 7, 9))
case("upsample", "nearest-exact-scale1.5", interp(scale_factor=1.5, mode="nearest-exact"),
     (1, 2, 5, 7))
case("upsample", "nearest-exact-size", interp(size=(11, 4), mode="nearest-exact"), (1, 2, 5, 7))
for align in (False, True):
    case("upsample", f"bilinear-scale1.7-align{align}",
         interp(scale_factor=1.7, mode="bilinear", align_corners=align), (1, 2, 5, 7))
    case("upsample", f"bilinear-size-align{align}",
         interp(size=(13, 8), mode="bilinear", align_corners=align), (1, 2, 5, 7))
    case("upsample", f"bicubic-scale2-align{align}",
         interp(scale_factor=2, mode="bicubic", align_corners=align), (1, 2, 5, 6))
case("upsample", "bilinear-scale1.1-same-size",
     interp(scale_factor=1.1, mode="bilinear"), (1, 2, 5, 7))
case("upsample", "bilinear-recompute-scale",
     interp(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True), (1, 2, 5, 7))
case("upsample", "bilinear-down", interp(scale_factor=0.45, mode="bilinear"), (1, 2, 11, 13))
case("upsample", "linear1d-scale2.5", interp(scale_factor=2.5, mode="linear"), (1, 2, 6))
case("upsample", "trilinear-size", interp(size=(5, 3, 6), mode="trilinear", align_corners=True),
     (1, 1, 3, 4, 4))
case("upsample", "nearest3d", interp(scale_factor=(2, 1, 3), mode="nearest"), (1, 1, 3, 4, 2))
case("upsample", "bilinear-antialias-down",
     interp(scale_factor=0.4, mode="bilinear", antialias=True), (1, 2, 12, 15))
case("upsample", "bicubic-antialias-down",
     interp(size=(4, 5), mode="bicubic", antialias=True), (1, 2, 11, 13))
case("upsample", "module-upsample", lambda: nn.Upsample(scale_factor=3, mode="bilinear"),
     (1, 2, 4, 3))

# ---- pixel shuffle ----------------------------------------------------------------------------
case("pixel_shuffle", "r2", lambda: nn.PixelShuffle(2), (1, 8, 5, 3))
case("pixel_shuffle", "r3-then-conv", lambda: seq(nn.PixelShuffle(3), nn.Conv2d(1, 1, 2, 2)),
     (1, 9, 3, 4))
case("pixel_unshuffle", "r2", lambda: nn.PixelUnshuffle(2), (1, 2, 8, 6), rsp=True)
case("pixel_unshuffle", "r3-after-conv", lambda: seq(nn.Conv2d(2, 2, 3, padding=1),
                                                     nn.PixelUnshuffle(3)), (1, 2, 9, 12))

# ---- padding ----------------------------------------------------------------------------------
case("pad", "constant-asymmetric-and-crop",
     lambda: Fn(lambda m, x: m.c(F.pad(x, (2, -1, -2, 3))), c=nn.Conv2d(2, 2, 3)), (1, 2, 8, 9),
     rsp=True)
for mode in ("reflect", "replicate", "circular"):
    case("pad", f"{mode}-2d", lambda mode=mode: Fn(lambda m, x: m.c(F.pad(x, (1, 3, 2, 0),
                                                                         mode=mode)),
                                                   c=nn.Conv2d(2, 2, 2)), (1, 2, 6, 7))
case("pad", "reflect-1d", lambda: nn.ReflectionPad1d((3, 1)), (1, 2, 6))
case("pad", "replicate-3d", lambda: nn.ReplicationPad3d((1, 0, 2, 1, 0, 2)), (1, 1, 3, 4, 5))
case("pad", "zero-pad-module", lambda: seq(nn.ZeroPad2d((1, 2, 0, 3)), nn.MaxPool2d(2)),
     (1, 2, 7, 8))

# ---- pointwise and friends ----------------------------------------------------------------------
case("pointwise", "activations-and-broadcast",
     lambda: Fn(lambda m, x: F.gelu(m.c(x)) * torch.sigmoid(gate(x)) + F.hardswish(x)
                - torch.where(x > 0.5, x, 0.5 * x).clamp(0, 1), c=nn.Conv2d(2, 2, 3, padding=1)),
     (1, 2, 7, 8))
case("pointwise", "inplace-relu-residual",
     lambda: Fn(lambda m, x: m.r(m.c(x) + x), c=nn.Conv2d(2, 2, 3, padding=1),
                r=nn.ReLU(inplace=True)), (1, 2, 7, 8), rsp=True)
case("dropout", "eval-dropouts",
     lambda: seq(nn.Conv2d(2, 2, 3), nn.Dropout(0.3), nn.Dropout2d(0.2)), (1, 2, 7, 8))
case("constant_like", "zeros-like",
     lambda: Fn(lambda m, x: m.c(x) + torch.zeros_like(x).sum() + x.new_ones(1)[0],
                c=nn.Conv2d(2, 2, 3, padding=1)), (1, 2, 6, 6))
case("copy", "slice-assignment",
     lambda: Fn(lambda m, x: _assign(x)), (1, 2, 8, 6))
# select assignment: the assigned row is taken to be read at every row (sound, not exact)
case("scatter_view", "select-assignment",
     lambda: Fn(lambda m, x: _assign_row(x)), (1, 2, 8, 6), exact=False)
case("scatter_view", "slice-assignment-strided",
     lambda: Fn(lambda m, x: _assign_strided(x)), (1, 2, 9, 6))


def _assign(x):
    y = x.clone()
    y[:, :, 1:3] = x[:, :, 4:6] * 2
    return y


def _assign_strided(x):
    y = x * 2.0
    y[:, :, 1::3] = x[:, :, :3].flip(2)
    return y


def _assign_row(x):
    y = x * 1.0
    y[:, :, 2] = x[:, :, 5] + 1
    return y


# ---- views --------------------------------------------------------------------------------------
case("reshape", "flatten-unflatten-roundtrip",
     lambda: Fn(lambda m, x: m.c(m.lin(x.flatten(2).transpose(1, 2)).transpose(1, 2)
                                 .unflatten(2, (6, 7))), lin=nn.Linear(2, 2),
                c=nn.Conv2d(2, 2, 3)), (1, 2, 6, 7), rsp=True)
case("reshape", "split-axis-and-merge-back",
     lambda: Fn(lambda m, x: m.c(x.view(1, 2, 4, 2, 6).relu().reshape(1, 2, 8, 6)),
                c=nn.Conv2d(2, 2, 3, 2)), (1, 2, 8, 6), rsp=True)
case("squeeze", "unsqueeze-conv3d-squeeze",
     lambda: Fn(lambda m, x: m.c(x.unsqueeze(2)).squeeze(2), c=nn.Conv3d(2, 2, (1, 3, 3))),
     (1, 2, 7, 6), rsp=True)
# 1-pixel maps: a size-1 spatial dim keeps its axis through views, so windows along it apply
case("unsqueeze", "1-pixel-axis-padded-conv3d",
     lambda: Fn(lambda m, x: m.c(x.unsqueeze(2)), c=nn.Conv3d(2, 2, (3, 1, 3), padding=(1, 0, 1))),
     (1, 2, 1, 6))
case("reshape", "alias-1-pixel-pool-reads-only-padding",
     lambda: Fn(lambda m, x: F.max_pool2d(m.p(x)[:, :, 0:], (2, 1), (1, 2), (1, 0), (2, 1)),
                p=nn.MaxPool2d((3, 2), 3, 1, ceil_mode=True)), (1, 2, 2, 11))
case("reshape", "view-keeps-1-pixel-axis",
     lambda: Fn(lambda m, x: m.c(x.view(1, 2, 1, 6) + 0), c=nn.Conv2d(2, 2, 3, padding=1)),
     (1, 2, 1, 6))
case("squeeze", "squeeze-1-pixel-then-broadcast-back",
     lambda: Fn(lambda m, x: m.c(x.squeeze(2)).unsqueeze(2) + x,
                c=nn.Conv1d(2, 2, 3, padding=1)), (1, 2, 1, 6))
case("reshape", "se-flatten-linear-view",
     lambda: Fn(lambda m, x: x * torch.sigmoid(m.fc(F.adaptive_avg_pool2d(m.c(x), 1).flatten(1)))
                .view(1, 2, 1, 1), c=nn.Conv2d(2, 2, 3, padding=1), fc=nn.Linear(2, 2)),
     (1, 2, 5, 6))
case("reshape", "merge-mixes-axes-global",
     lambda: Fn(lambda m, x: m.c(x.reshape(1, 2, 6, 8)), c=nn.Conv2d(2, 2, 3)), (1, 2, 8, 6),
     exact=False)
case("permute", "channels-last-linear",
     lambda: Fn(lambda m, x: m.c(m.lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)),
                lin=nn.Linear(2, 3), c=nn.Conv2d(3, 2, (3, 1))), (1, 2, 7, 6), rsp=True)
case("permute", "transpose-spatial",
     lambda: Fn(lambda m, x: m.c(x.transpose(2, 3)).transpose(2, 3), c=nn.Conv2d(2, 2, (5, 1))),
     (1, 2, 7, 9))
case("expand", "gate-expand",
     lambda: Fn(lambda m, x: x * gate(m.c(x)).expand(-1, -1, 5, 6), c=nn.Conv2d(2, 2, 1)),
     (1, 2, 5, 6))
case("expand", "row-expand",
     lambda: Fn(lambda m, x: x[:, :, 1:2].expand(-1, -1, 4, -1) + x), (1, 2, 4, 6))
case("expand_as", "gate-expand-as",
     lambda: Fn(lambda m, x: x * gate(x).expand_as(x)), (1, 2, 5, 6))
case("repeat", "tile", lambda: Fn(lambda m, x: x.repeat(1, 1, 2, 3)), (1, 2, 3, 2))
case("flip", "flip-conv", lambda: Fn(lambda m, x: m.c(x.flip(2)), c=nn.Conv2d(2, 2, 3)),
     (1, 2, 7, 6))
case("roll", "roll-conv", lambda: Fn(lambda m, x: m.c(torch.roll(x, (2, -1), (2, 3))),
                                     c=nn.Conv2d(2, 2, 2)), (1, 2, 6, 5))
case("roll", "roll-flat-global", lambda: Fn(lambda m, x: torch.roll(x, 3)), (1, 2, 4, 3),
     exact=False)

# ---- indexing -----------------------------------------------------------------------------------
case("slice_", "strided-slices",
     lambda: Fn(lambda m, x: m.c(x[:, :, 1:-2:2, 3:]), c=nn.Conv2d(2, 2, 2)), (1, 2, 13, 9),
     rsp=True)
case("slice_", "narrow", lambda: Fn(lambda m, x: x.narrow(3, 2, 3)), (1, 2, 5, 7))
case("select", "row-broadcast-back",
     lambda: Fn(lambda m, x: x + m.c(x[:, :, 3]).unsqueeze(2), c=nn.Conv1d(2, 2, 3, padding=1)),
     (1, 2, 7, 6))
case("index", "list-index", lambda: Fn(lambda m, x: x[:, :, [0, 3, 5, 5]]), (1, 2, 7, 4))
case("index", "index-select",
     lambda: Fn(lambda m, x: torch.index_select(x, 3, m.i), buffers={"i": torch.tensor([4, 1])}),
     (1, 2, 3, 6))
case("cat", "channels-two-branches",
     lambda: Fn(lambda m, x: torch.cat([m.a(x), m.b(x)], 1), a=nn.Conv2d(2, 2, 3, padding=1),
                b=nn.Conv2d(2, 2, 5, padding=2)), (1, 2, 7, 8), rsp=True)
case("cat", "spatial-halves-swapped",
     lambda: Fn(lambda m, x: torch.cat([x[:, :, 4:], m.c(x[:, :, :4])], 2),
                c=nn.Conv2d(2, 2, 3, padding=1)), (1, 2, 8, 5))
case("stack", "stack-mean", lambda: Fn(lambda m, x: torch.stack([m.a(x), x], 2).mean(2),
                                       a=nn.Conv2d(2, 2, 3, padding=1)), (1, 2, 6, 7))
case("split", "chunk-swap", lambda: Fn(lambda m, x: torch.cat(x.chunk(2, 2)[::-1], 2)),
     (1, 2, 8, 3))
case("split", "unbind-width",
     lambda: Fn(lambda m, x: sum(t * (i + 1) for i, t in enumerate(x.unbind(3)))), (1, 2, 5, 3))
case("unfold", "tensor-unfold", lambda: Fn(lambda m, x: x.unfold(2, 3, 2).sum(-1)),
     (1, 2, 9, 4), rsp=True)
case("glu", "glu-spatial", lambda: Fn(lambda m, x: F.glu(x, 2)), (1, 2, 8, 3))

# ---- normalization ------------------------------------------------------------------------------
case("batch_norm", "eval", lambda: seq(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2)), (1, 2, 7, 8),
     rsp=True)
case("batch_norm", "functionalized-no-training-op",  # slice assignment: inference IR
     lambda: Fn(lambda m, x: m.bn(_assign(m.c(x))), c=nn.Conv2d(2, 2, 3), bn=nn.BatchNorm2d(2)),
     (1, 2, 10, 8))
case("batch_norm", "training-stats-global",
     lambda: Fn(lambda m, x: F.batch_norm(x, None, None, training=True)), (2, 2, 5, 4))
case("instance_norm", "affine", lambda: nn.InstanceNorm2d(2, affine=True), (1, 2, 5, 6))
case("group_norm", "2-groups", lambda: nn.GroupNorm(2, 4), (1, 4, 5, 6))
case("layer_norm", "channels-last",
     lambda: Fn(lambda m, x: m.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2),
                ln=nn.LayerNorm(2)), (1, 2, 5, 6))
case("layer_norm", "chw-global", lambda: nn.LayerNorm((2, 5, 6)), (1, 2, 5, 6))

# ---- reductions ---------------------------------------------------------------------------------
case("reduction", "se-gate", lambda: Fn(lambda m, x: x * gate(m.c(x)),
                                        c=nn.Conv2d(2, 2, 1)), (1, 2, 5, 6))
# max reductions pass gradient to the argmax only: the oracle sees part of the support
case("reduction", "amax-over-width", lambda: Fn(lambda m, x: x + x.amax(3, keepdim=True)),
     (1, 2, 5, 6), exact=False)
case("reduction", "max-dim-no-keepdim",
     lambda: Fn(lambda m, x: x.max(dim=2).values.unsqueeze(2) + x), (1, 2, 5, 6), exact=False)
case("reduction", "var-std-sum", lambda: Fn(lambda m, x: x.var(3, keepdim=True)
                                            + x.std((2, 3), keepdim=True) + x.sum(1, True)),
     (1, 2, 5, 6))
case("softmax", "over-height", lambda: Fn(lambda m, x: x.softmax(2)), (1, 2, 5, 6))
case("softmax", "over-channels", lambda: Fn(lambda m, x: m.c(x).log_softmax(1),
                                            c=nn.Conv2d(2, 3, 3)), (1, 2, 6, 7), rsp=True)
case("cumulative", "cumsum-width", lambda: Fn(lambda m, x: x.cumsum(3)), (1, 2, 4, 6))
case("cumulative", "cummax-height", lambda: Fn(lambda m, x: x.cummax(2).values), (1, 2, 5, 3),
     exact=False)

# ---- linear maps, attention, sampling -----------------------------------------------------------
case("matmul", "matmul-over-width",
     lambda: Fn(lambda m, x: x @ m.w, buffers={"w": torch.ones(5, 3)}), (1, 2, 4, 5))
case("matmul", "token-attention-bmm",
     lambda: Fn(lambda m, x: _bmm_attention(x)), (1, 2, 3, 4), exact=True)
case("einsum", "mix-height",
     lambda: Fn(lambda m, x: torch.einsum("nchw,hk->nckw", x, m.w),
                buffers={"w": torch.ones(5, 2)}), (1, 2, 5, 4))
case("einsum", "pointwise-product", lambda: Fn(lambda m, x: torch.einsum("nchw,nchw->nhw", x, x)
                                               .unsqueeze(1)), (1, 2, 4, 5))
case("attention", "tokens-global",
     lambda: Fn(lambda m, x: F.scaled_dot_product_attention(*(x.flatten(2).transpose(1, 2),) * 3)
                .transpose(1, 2).unflatten(2, (3, 4))), (1, 2, 3, 4))
case("attention", "vit-cls-token-pos-embedding",
     lambda: Fn(lambda m, x: _vit(m, x), p=nn.Conv2d(2, 4, 2, 2),
                buffers={"cls": torch.ones(1, 1, 4), "pos": torch.ones(1, 13, 4)}),
     (1, 2, 6, 8))
case("attention", "causal-1d",
     lambda: Fn(lambda m, x: F.scaled_dot_product_attention(*(x.transpose(1, 2),) * 3,
                                                             is_causal=True).transpose(1, 2)),
     (1, 2, 7))
case("grid_sample", "constant-affine-grid",
     lambda: Fn(lambda m, x: F.grid_sample(x, m.g, align_corners=False),
                buffers={"g": F.affine_grid(torch.tensor([[[0.5, 0.0, 0.1], [0.0, 0.5, 0.0]]]),
                                            (1, 2, 4, 5), align_corners=False)}),
     (1, 2, 8, 9), exact=False)


def _vit(m, x):
    t = m.p(x).flatten(2).transpose(1, 2)  # (N, 12, 4) patch tokens
    t = torch.cat([m.cls.expand(x.shape[0], -1, -1), t], 1) + m.pos
    t = F.scaled_dot_product_attention(t, t, t)[:, 1:]
    return t.transpose(1, 2).reshape(x.shape[0], 4, 3, 4)


def _bmm_attention(x):
    t = x.flatten(2).transpose(1, 2)  # (N, HW, C)
    w = torch.softmax(t @ t.transpose(1, 2), -1)
    return (w @ t).transpose(1, 2).unflatten(2, x.shape[2:])


@pytest.mark.parametrize("rule,make,shape,exact,rsp,output,draws", CASES)
def test_rule_against_oracle(rule, make, shape, exact, rsp, output, draws):
    torch.manual_seed(0)
    model = make()
    # export: the rules of high-level ops (conv_transpose, matmul, ...) are what the cases
    # exercise; the fast capture sees their decompositions (test_torch_fast_capture.py)
    analysis, cap, _ = compare(model, shape, output, exact=exact, rsp=rsp, draws=draws,
                               trace_options={"capture": "export"})
    used = {getattr(lookup(n.target, {}), "__name__", None) for n in cap.program.graph.nodes
            if n.op == "call_function"}
    assert rule in used, f"the case does not exercise rule {rule!r} (used: {sorted(used - {None})})"


def test_every_rule_has_a_case():
    covered = {c.values[0] for c in CASES}
    missing = set(RULES.rule_functions) - covered
    assert not missing, f"rules without a test case: {sorted(missing)}"


@pytest.mark.parametrize("capture_with", ["fast", "export"])
def test_global_pool_reads_a_1_pixel_axis_in_place(capture_with):
    """Global pooling of a 1-pixel axis reads that pixel: r, S, P stay those of its input
    (not 'global': the pixel need not see the whole input), with both captures and as the
    spec's ``global`` says."""
    from analytic import analyze, analyze_graph
    from analytic.frontends.torch import capture
    model = seq(nn.Conv2d(2, 2, (3, 1), stride=(4, 1)), nn.AdaptiveAvgPool2d(1))
    a = analyze_graph(capture(model, (1, 2, 12, 1), capture=capture_with))
    assert [r.note for r in a.node().rf] == ["global", ""] and a.size[1] == 1
    spec = analyze({"input": [12, 1], "nodes": [
        {"name": "c", "op": "conv", "inputs": ["input"], "kernel": [3, 1], "stride": [4, 1]},
        {"name": "g", "op": "global", "inputs": ["c"]}]})
    assert [r.note for r in spec.node().rf] == ["global", ""] and spec.size[1] == 1


def test_global_ops_say_global():
    """Where regions are an over-approximation the analysis must say global, not guess."""
    from analytic import analyze_graph
    from analytic.frontends.torch import capture
    model = Fn(lambda m, x: F.grid_sample(x, m.g, align_corners=False),
               buffers={"g": torch.zeros(1, 3, 3, 2)})
    a = analyze_graph(capture(model, (1, 2, 8, 9)))
    assert a.node().is_global
