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
                  {"torch": "experiments.models.modern:small_resnet"},
                  {"torch": (1, 3, 96, 96)}, {"torch": "NCHW"}, "layer3"))
register(ZooEntry("convnext_t", "ConvNeXt-T geometry (7x7 depthwise), width 1/4",
                  {"torch": "experiments.models.zoo:_convnext_t_quarter"}, _TORCH_NCHW,
                  {"torch": "NCHW"}, "stages.3"))
register(ZooEntry("replknet_31b", "RepLKNet-31B geometry (31x31 depthwise), width 1/8",
                  {"torch": "experiments.models.zoo:_replknet_small"}, _TORCH_NCHW,
                  {"torch": "NCHW"}, "stages.3"))


def _convnext_t_quarter():
    from experiments.models.modern import convnext_t
    return convnext_t(width=0.25)


def _replknet_small():
    from experiments.models.modern import replknet_31b
    return replknet_31b(width=0.125)
