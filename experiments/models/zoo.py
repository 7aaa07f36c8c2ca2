"""The model zoo: names users can type instead of ``module:attr`` (``erf zoo`` lists them).

Each entry names a factory per framework by import path, so listing the zoo imports nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from analytic.errors import SpecError


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    factories: dict[str, str]  # framework -> "module:attr" of a zero-argument factory
    default_shape: dict[str, tuple[int, ...]] = field(default_factory=dict)
    layout: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None  # the end-point of the published table, if any

    def load(self, framework: str | None = None):
        from erf.targets import Target
        fw = framework or next(iter(self.factories))
        if fw not in self.factories:
            raise SpecError(f"zoo model {self.name!r} has no {fw} definition; it has "
                            f"{', '.join(self.factories)}")
        module, _, attr = self.factories[fw].partition(":")
        obj = getattr(importlib.import_module(module), attr)()
        return Target(obj, fw, self.name, self.default_shape.get(fw), self.layout.get(fw))


ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    if entry.name in ZOO:
        raise RuntimeError(f"zoo name {entry.name!r} registered twice")
    ZOO[entry.name] = entry
    return entry


_TORCH_NCHW = {"torch": (1, 3, 224, 224)}
register(ZooEntry("small_resnet", "quickstart ResNet: 3x3/2 stem, 3 stages of basic blocks",
                  {"torch": "experiments.models.modern:small_resnet",
                   "jax": "experiments.models.jax_nets:small_resnet"},
                  {"torch": (1, 3, 96, 96), "jax": (1, 3, 96, 96)},
                  {"torch": "NCHW", "jax": "NCHW"}, "layer3"))
register(ZooEntry("convnext_t", "ConvNeXt-T geometry (7x7 depthwise), width 1/4",
                  {"torch": "experiments.models.zoo:_convnext_t_quarter"}, _TORCH_NCHW,
                  {"torch": "NCHW"}, "stages.3"))
register(ZooEntry("replknet_31b", "RepLKNet-31B geometry (31x31 depthwise), width 1/8",
                  {"torch": "experiments.models.zoo:_replknet_small"}, _TORCH_NCHW,
                  {"torch": "NCHW"}, "stages.3"))


def _slim(name: str) -> str:
    return f"experiments.models.zoo:_slim_{name}"


_SLIM_JAX = ("alexnet_v2", "vgg_16", "mobilenet_v1", "resnet_v1_50", "inception_v3")
for _name in ("alexnet_v2", "vgg_a", "vgg_16", "mobilenet_v1", "mobilenet_v1_075",
              "resnet_v1_50", "resnet_v1_101", "resnet_v1_152", "resnet_v1_200",
              "resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200",
              "inception_v2", "inception_v3", "inception_v4", "inception_resnet_v2"):
    _jax = _name in _SLIM_JAX  # JAX twins (experiments/models/slim_jax.py, width 1/8, NHWC)
    register(ZooEntry(_name, f"TF-slim {_name} (random init, TF 'SAME' padding emulated)",
                      {"torch": _slim(_name),
                       **({"jax": f"experiments.models.slim_jax:{_name}"} if _jax else {})},
                      {**_TORCH_NCHW, **({"jax": (1, 224, 224, 3)} if _jax else {})},
                      {"torch": "NCHW", **({"jax": "NHWC"} if _jax else {})},
                      None))  # end-point: experiments.models.slim.PAPER_ENDPOINT, filled lazily


def __getattr__(attr: str):
    """``_slim_<name>``: zero-argument factories of the slim nets (imported on first use)."""
    if attr.startswith("_slim_"):
        from experiments.models.slim import SLIM_MODELS
        return SLIM_MODELS[attr[len("_slim_"):]]
    raise AttributeError(attr)


def endpoint_of(name: str) -> str | None:
    """The published-table end-point of a zoo model (slim nets: their last spatial one)."""
    entry = ZOO[name]
    if entry.endpoint is None and entry.name in _SLIM_NAMES:
        from experiments.models.slim import PAPER_ENDPOINT
        return PAPER_ENDPOINT[entry.name]
    return entry.endpoint


_SLIM_NAMES = {n for n, e in ZOO.items() if e.factories.get("torch", "").startswith(
    "experiments.models.zoo:_slim_")}


for _name, _desc, _end in (
        ("resnet50_tv", "torchvision-style ResNet-50 (bottlenecks, 1x1/2 shortcuts), width 1/4",
         "layer4"),
        ("unet", "U-Net: 3 max-pool downsamplings, transposed-conv upsampling, skips",
         None),
        ("deeplab", "DeepLab-style: output stride 8, dilated stages, ASPP, bilinear upsampling",
         None),
        ("mobilenet_v2", "MobileNetV2-style: inverted residuals, depthwise 3x3, width 1/2",
         "features")):
    register(ZooEntry(_name, _desc, {"torch": f"experiments.models.zoo:_{_name}"},
                      _TORCH_NCHW, {"torch": "NCHW"}, _end))


def _resnet50_tv():
    from experiments.models.torch_nets import ResNet
    return ResNet(width=16, classes=1000)


def _unet():
    from experiments.models.torch_nets import UNet
    return UNet(width=16)


def _deeplab():
    from experiments.models.torch_nets import DeepLab
    return DeepLab(width=8)


def _mobilenet_v2():
    from experiments.models.torch_nets import MobileNetV2
    return MobileNetV2(div=2, expand_max=6, classes=1000)


def _convnext_t_quarter():
    from experiments.models.modern import convnext_t
    return convnext_t(width=0.25)


def _replknet_small():
    from experiments.models.modern import replknet_31b
    return replknet_31b(width=0.125)
