"""TF-slim's layers in PyTorch: TensorFlow padding, conv + batch norm + activation, pools, blocks.

Every spatial quantity is a per-axis tuple (height, width). Window ops never pad inside
PyTorch (``padding=0``): :class:`TFPad` computes TensorFlow's padding from the actual input
size at forward time and applies it with ``torch.nn.functional.pad``, so 'SAME' is exact,
including its asymmetric, input-size dependent form (DESIGN.md section 5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from analytic.geometry import same_pad

Pads = tuple[tuple[int, int], ...]  # (before, after) per spatial axis
Padding = str | Pads  # 'SAME', 'VALID' or explicit pads (resnet_utils.conv2d_same)


def per_axis(value: int | Sequence[int], axes: int = 2) -> tuple[int, ...]:
    """``3 -> (3, 3)``; a sequence is checked to have one entry per axis."""
    if isinstance(value, int):
        return (value,) * axes
    out = tuple(int(v) for v in value)
    if len(out) != axes:
        raise ValueError(f"expected {axes} per-axis values, got {value!r}")
    return out


def fixed_pad(kernel: int | Sequence[int], dilation: int | Sequence[int] = 1) -> Pads:
    """resnet_utils.conv2d_same's explicit padding: ``span - 1`` split as before = half."""
    spans = [d * (k - 1) + 1 for k, d in zip(per_axis(kernel), per_axis(dilation), strict=True)]
    return tuple(((s - 1) // 2, (s - 1) - (s - 1) // 2) for s in spans)


class TFPad(nn.Module):
    """Pads the spatial axes like TensorFlow does before a window op that pads nothing itself.

    ``padding`` is 'SAME' (computed from the input size at each call), 'VALID' (nothing) or
    explicit per-axis ``(before, after)`` pairs. ``value`` fills the padding (-inf before a
    max pool, so padded positions never win, as in TensorFlow).
    """

    def __init__(self, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
                 dilation: int | Sequence[int] = 1, padding: Padding = "SAME",
                 value: float = 0.0) -> None:
        super().__init__()
        self.kernel = per_axis(kernel)
        self.stride = per_axis(stride)
        self.dilation = per_axis(dilation)
        if isinstance(padding, str):
            if padding not in ("SAME", "VALID"):
                raise ValueError(f"padding must be 'SAME', 'VALID' or per-axis pairs, "
                                 f"got {padding!r}")
        else:
            padding = tuple((int(b), int(a)) for b, a in padding)
            if len(padding) != len(self.kernel):
                raise ValueError(f"explicit padding needs one (before, after) per axis, "
                                 f"got {padding!r}")
        self.padding = padding
        self.value = value

    def pads(self, spatial: Sequence[int]) -> Pads:
        """The (before, after) padding per axis for an input of these spatial sizes."""
        if self.padding == "VALID":
            return ((0, 0),) * len(spatial)
        if self.padding == "SAME":
            return tuple(same_pad(int(n), k, s, d) for n, k, s, d in
                         zip(spatial, self.kernel, self.stride, self.dilation,
                                                     strict=True))
        return self.padding  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads(x.shape[2:])
        if not any(b or a for b, a in pads):
            return x
        flat = [p for before_after in reversed(pads) for p in before_after]  # last axis first
        return F.pad(x, flat, value=self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding!r}" + (f", value={self.value}" if self.value else "")


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow padding (a :class:`TFPad` child), ``padding=0`` inside."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | Sequence[int],
                 stride: int | Sequence[int] = 1, *, padding: Padding = "SAME",
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, per_axis(kernel), per_axis(stride),
                         padding=0, dilation=per_axis(dilation), groups=groups, bias=bias)
        self.tf_pad = TFPad(kernel, stride, dilation, padding)

    def pads(self, spatial: Sequence[int]) -> Pads:
        return self.tf_pad.pads(spatial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.tf_pad(x))


class MaxPool2d(nn.MaxPool2d):
    """slim.max_pool2d: TensorFlow padding with -inf, so padded positions never win."""

    def __init__(self, kernel: int | Sequence[int], stride: int | Sequence[int] = 2, *,
                 padding: Padding = "VALID") -> None:
        super().__init__(per_axis(kernel), per_axis(stride), padding=0)
        self.tf_pad = TFPad(kernel, stride, 1, padding, value=float("-inf"))

    def pads(self, spatial: Sequence[int]) -> Pads:
        return self.tf_pad.pads(spatial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.tf_pad(x))


class AvgPool2d(nn.AvgPool2d):
    """slim.avg_pool2d: like TensorFlow, padded positions are left out of each average.

    Symmetric padding (every 'SAME' avg pool of these nets: stride 1, odd kernel) goes to
    ``avg_pool2d(..., count_include_pad=False)``; asymmetric padding pads with zeros and
    divides by the pooled count of real positions.
    """

    def __init__(self, kernel: int | Sequence[int], stride: int | Sequence[int] = 2, *,
                 padding: Padding = "VALID") -> None:
        super().__init__(per_axis(kernel), per_axis(stride), padding=0)
        self.tf_pad = TFPad(kernel, stride, 1, padding)

    def pads(self, spatial: Sequence[int]) -> Pads:
        return self.tf_pad.pads(spatial)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads(x.shape[2:])
        if all(b == a for b, a in pads):
            return F.avg_pool2d(x, self.kernel_size, self.stride,
                                padding=tuple(b for b, _ in pads), count_include_pad=False)
        ones = x.new_ones((1, 1, *x.shape[2:]))
        total = F.avg_pool2d(self.tf_pad(x), self.kernel_size, self.stride)
        count = F.avg_pool2d(self.tf_pad(ones), self.kernel_size, self.stride)
        return total / count


class BatchNorm(nn.BatchNorm2d):
    """slim.batch_norm: beta always; gamma only with ``scale=True`` (slim's default is False)."""

    def __init__(self, channels: int, *, eps: float, decay: float, scale: bool) -> None:
        super().__init__(channels, eps=eps, momentum=1.0 - decay, affine=True)
        self.scale = scale
        if not scale:
            self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale={self.scale}"


@dataclass(frozen=True)
class BatchNormArgs:
    eps: float
    decay: float
    scale: bool


@dataclass(frozen=True)
class ArgScope:
    """What a net's slim.arg_scope sets for slim.conv2d: normalizer and activation.

    With ``batch_norm=None`` convolutions have biases, as slim's do without a normalizer.
    """

    batch_norm: BatchNormArgs | None
    activation: Callable[[], nn.Module] | None = nn.ReLU

    def conv(self, in_channels: int, out_channels: int, kernel: int | Sequence[int],
             stride: int | Sequence[int] = 1, *, padding: Padding = "SAME",
             dilation: int | Sequence[int] = 1, groups: int = 1, normalize: bool = True,
             activate: bool = True) -> SlimConv:
        """slim.conv2d under this scope; ``normalize``/``activate`` False mirror
        ``normalizer_fn=None`` / ``activation_fn=None``."""
        bn = self.batch_norm if normalize else None
        conv = Conv2d(in_channels, out_channels, kernel, stride, padding=padding,
                      dilation=dilation, groups=groups, bias=bn is None)
        act = self.activation() if activate and self.activation is not None else None
        return SlimConv(conv, bn, act)


class SlimConv(nn.Sequential):
    """One slim.conv2d: ``conv``, then ``bn`` (if normalized), then ``act`` (if any)."""

    def __init__(self, conv: nn.Conv2d, bn: BatchNormArgs | None, act: nn.Module | None) -> None:
        super().__init__()
        self.conv = conv
        if bn is not None:
            self.bn = BatchNorm(conv.out_channels, eps=bn.eps, decay=bn.decay, scale=bn.scale)
        if act is not None:
            self.act = act
        self.out_channels = conv.out_channels


class SeparableConv(nn.Sequential):
    """slim.separable_conv2d with num_outputs: ``depthwise`` (channel multiplier) then
    1x1 ``pointwise``, bias and activation (slim's defaults outside a conv2d arg_scope)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int | Sequence[int],
                 stride: int | Sequence[int], *, multiplier: int, padding: Padding = "SAME",
                 activation: Callable[[], nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.depthwise = Conv2d(in_channels, in_channels * multiplier, kernel, stride,
                                padding=padding, groups=in_channels, bias=False)
        self.pointwise = Conv2d(in_channels * multiplier, out_channels, 1, bias=True)
        self.act = activation()
        self.out_channels = out_channels


def out_channels(module: nn.Module, in_channels: int) -> int:
    """Channels after ``module``: its ``out_channels``, or unchanged (pools, activations)."""
    return int(getattr(module, "out_channels", in_channels))


class Block(nn.Sequential):
    """Named layers in sequence; the last ``parallel`` of them read the same input and their
    outputs are concatenated on channels (inception's Mixed_* blocks, and branches such as
    v3's ``[1x3, 3x1]`` ending). ``parallel=len(layers)`` makes a Mixed block of branches."""

    def __init__(self, in_channels: int, layers: dict[str, nn.Module], parallel: int = 0) -> None:
        super().__init__()
        if not 0 <= parallel <= len(layers):
            raise ValueError(f"parallel={parallel} but the block has {len(layers)} layers")
        for name, layer in layers.items():
            self.add_module(name, layer)
        self.parallel = parallel
        mods = list(layers.values())
        c = in_channels
        for m in mods[: len(mods) - parallel]:
            c = out_channels(m, c)
        self.out_channels = sum(out_channels(m, c) for m in mods[len(mods) - parallel:]) \
            if parallel else c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mods = list(self)
        split = len(mods) - self.parallel
        for m in mods[:split]:
            x = m(x)
        if self.parallel:
            x = torch.cat([m(x) for m in mods[split:]], dim=1)
        return x

    def extra_repr(self) -> str:
        return f"parallel={self.parallel}" if self.parallel else ""


class SpatialSqueeze(nn.Module):
    """tf.squeeze(net, [1, 2]) in NCHW: drops the spatial axes when they are 1x1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(3).squeeze(2)


class ReducedAvgPool(nn.Module):
    """The classifier's VALID average pool with slim's ``_reduced_kernel_size_for_small_input``:
    the kernel shrinks to the feature map when the map is smaller (slim reads static shapes;
    here the actual size at forward time)."""

    def __init__(self, kernel: int | Sequence[int], stride: int | Sequence[int] = 2) -> None:
        super().__init__()
        self.kernel = per_axis(kernel)
        self.stride = per_axis(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = tuple(min(int(n), k) for n, k in zip(x.shape[2:], self.kernel, strict=True))
        return F.avg_pool2d(x, kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


class GlobalAvgPool(nn.Module):
    """tf.reduce_mean over the spatial axes, keeping them (``keep_dims=True``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


def depth_fn(multiplier: float, min_depth: int) -> Callable[[int], int]:
    """slim's ``depth = lambda d: max(int(d * depth_multiplier), min_depth)``."""
    if multiplier <= 0:
        raise ValueError(f"depth_multiplier must be > 0, got {multiplier}")
    return lambda d: max(int(d * multiplier), min_depth)
