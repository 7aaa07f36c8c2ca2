"""The models the torch-vs-JAX ERF benchmarks share: same geometry and end-point per framework.

- ``resnet50``: TF-slim ``resnet_v1_50`` at full width (torch ``experiments.models.slim``, NCHW;
  JAX ``experiments.models.slim_jax``, NHWC), 224 px, end-point ``block3.unit_5``: the last
  unit before block 3's stride, 14x14x1024 (torchvision's ``layer3``; r 259, S 16). Weights are
  random and differ between the frameworks (the time does not depend on them).
- ``small``: the quickstart ``small_resnet`` (3 stages of basic blocks) at 96 px, end-point
  ``layer3`` (12x12), with the same weights in both frameworks (``jax_nets`` copies them).

``load(name, framework)`` returns a :class:`Bench` with the model as ``erf.measure`` takes it,
the input shape and layout, and ``endpoint_fn``: a plain function ``f(x) -> end-point`` (torch:
a forward hook on the end-point module; JAX: ``f(params, x)``, the model's jaxpr cut at the
end of the end-point's ``jax.named_scope`` with erf's own helper) for the bare baselines.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ("resnet50", "small")


@dataclass
class Bench:
    model: Any  # torch module or JAX (fn, params)
    input_shape: tuple[int, ...]
    layout: str
    output: str
    endpoint_fn: Any
    description: str


def load(name: str, framework: str) -> Bench:
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if framework == "torch":
        return _torch(name)
    if framework == "jax":
        return _jax(name)
    raise SystemExit(f"unknown framework {framework!r}; choose torch or jax")


def _torch(name: str) -> Bench:
    import torch
    torch.manual_seed(0)
    if name == "resnet50":
        from experiments.models.slim import SLIM_MODELS
        model = SLIM_MODELS["resnet_v1_50"]().eval()
        shape, output, desc = (1, 3, 224, 224), "block3.unit_5", "slim resnet_v1_50 (torch)"
    else:
        from experiments.models.modern import small_resnet
        model = small_resnet()
        shape, output, desc = (1, 3, 96, 96), "layer3", "small_resnet (torch)"
    module = dict(model.named_modules())[output]

    def endpoint_fn(x):
        box: list = []
        handle = module.register_forward_hook(lambda m, a, out: box.append(out))
        try:
            model(x)
        finally:
            handle.remove()
        return box[-1]
    return Bench(model, shape, "NCHW", output, endpoint_fn, desc)


def _jax(name: str) -> Bench:
    from erf.jax_backend import _truncate
    if name == "resnet50":
        from experiments.models import slim_jax
        fn, params = slim_jax.resnet_v1_50(width=1.0)
        shape, layout, output = (1, 224, 224, 3), "NHWC", "block3.unit_5"
        return Bench((fn, params), shape, layout, output, _truncate(fn, output),
                     "slim resnet_v1_50 (JAX)")
    from experiments.models.jax_nets import small_resnet_layer3
    fn, params = small_resnet_layer3()
    return Bench((fn, params), (1, 3, 96, 96), "NCHW", "layer3", fn, "small_resnet (JAX)")


def cotangents(framework: str, layout: str, y_shape, units, dtype="float32"):
    """(k, *y_shape) cotangents, 1 on every channel of unit j's position (as erf does)."""
    import numpy as np
    cot = np.zeros((len(units), *y_shape), dtype)
    for j, u in enumerate(units):
        if layout == "NCHW":
            cot[(j, 0, slice(None), *u)] = 1
        else:
            cot[(j, 0, *u, slice(None))] = 1
    return cot
