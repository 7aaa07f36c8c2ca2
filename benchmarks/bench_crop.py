"""Crop measurement vs the full input: units/s of ERF measurement on a ResNet-50-sized net.

Run: ``python benchmarks/bench_crop.py [--device cpu|cuda] [--size 512] [--threads 1]
[--model resnet50|convnext_t|replknet_31b] [--grid 8]``; writes results/crop.json for the
default model and size (else crop_<model>_<size>.json; ``_cuda`` on a GPU). Default:
torchvision-style ResNet-50 (width 64, built here), float32, end-point ``layer2`` (mid-level:
r 99 px, S 8, well inside a 512 px image), an 8x8 grid of 64 interior units; the other
models at ``stages.1`` (stride 8). Three ways to get the same units' maps:

- ``erf.measure(crop=True)``: each unit on a crop holding its exact region, crops stacked
  along the batch axis; the time includes both analyses (full size and crop size, the
  refusal check) and the capture;
- ``erf.measure`` on the full input (shared forward, batched cotangents), timed on
  ``--units-full`` units (its cost per unit is constant);
- one forward and one backward on the full image per unit (what existing tools do), timed on
  ``--units-full`` units.

Also checks that the crop maps equal the per-unit ones on the units they share.
Target (issue 11): >= 10x the units/s of one forward+backward per unit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
from common import crop_row, interior_grid, write_result  # noqa: E402

import erf  # noqa: E402
from experiments.models.modern import convnext_t, replknet_31b  # noqa: E402
from experiments.models.torch_nets import ResNet  # noqa: E402

# name -> (description, factory, end-point, its stride)
MODELS = {
    "resnet50": ("torchvision-style ResNet-50 (width 64)",
                 lambda: ResNet((3, 4, 6, 3), width=64, classes=1000), "layer2", 8),
    "convnext_t": ("ConvNeXt-T", convnext_t, "stages.1", 8),
    "replknet_31b": ("RepLKNet-31B (31x31 kernels)", replknet_31b, "stages.1", 8),
}


def per_unit_loop(model, x, output: str, units: np.ndarray) -> np.ndarray:
    """One forward and one backward on the full input per unit (forward hook end-point)."""
    store = {}
    handle = model.get_submodule(output).register_forward_hook(
        lambda m, a, out: store.__setitem__("y", out))
    maps = []
    try:
        for u in units:
            xi = x.detach().clone().requires_grad_(True)
            model(xi)
            y = store["y"]
            cot = torch.zeros_like(y)
            cot[(slice(None), slice(None), *(int(v) for v in u))] = 1
            (g,) = torch.autograd.grad(y, xi, cot)
            maps.append(g.abs().sum(1).mean(0).double().cpu().numpy())
    finally:
        handle.remove()
    return np.stack(maps)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str):
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--units-full", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, help="crops per pass (default: erf's choice)")
    ap.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    ap.add_argument("--grid", type=int, default=8, help="units: a GRID x GRID grid")
    opts = ap.parse_args()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    warnings.simplefilter("error")  # a refused crop must not pass unnoticed
    description, make, output, stride = MODELS[opts.model]
    model = make().eval().to(opts.device)
    shape = (1, 3, opts.size, opts.size)
    units = interior_grid(opts.size // stride, opts.grid)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    kw = dict(output=output, device=opts.device, chunk=opts.chunk)
    erf.measure(model, (1, 3, 256, 256), units=units[:2] // 2, crop=True, **kw)  # warm-up
    cropped, t_crop = timed(lambda: erf.measure(model, inputs=x, units=units, crop=True, **kw),
                            opts.device)
    sub = units[:: len(units) // opts.units_full][: opts.units_full]
    full, t_full = timed(lambda: erf.measure(model, inputs=x, units=sub, **kw), opts.device)
    xt = torch.as_tensor(x, device=opts.device)
    loop, t_loop = timed(lambda: per_unit_loop(model, xt, output, sub), opts.device)
    row = crop_row(description, shape, opts.device, output, units, cropped, t_crop, sub, loop,
                   t_loop, full, t_full)
    name = "crop" + ("" if (opts.model, opts.size) == ("resnet50", 512) else
                     f"_{opts.model}_{opts.size}") + ("" if opts.device == "cpu" else "_cuda")
    path = write_result(name, {"target_speedup": 10, "threads": opts.threads,
                               "load_average_1min": os.getloadavg()[0], "rows": [row]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
