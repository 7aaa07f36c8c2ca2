"""Crop measurement vs one forward+backward per unit: units/s on a ResNet-50-sized net at 512.

Run: ``python benchmarks/bench_crop.py [--units-full N]``; writes results/crop.json.
torchvision-style ResNet-50 (width 64), float32, CPU, end-point ``layer2`` (mid-level: r 99 px,
S 8, well inside a 512 px image), a grid of 8x8 = 64 units. The crop path (erf.crop) includes
its two analyses (full size and crop size: the refusal check); the baseline runs one forward
and one backward on the full image per unit, timed on a few units (its cost per unit is
constant). Also checks that both give the same maps on the units they share.
Target (issue 11): >= 10x the units/s of the baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
from common import write_result  # noqa: E402

from erf.crop import measure_cropped, measure_full  # noqa: E402
from experiments.models.torch_nets import ResNet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units-full", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    opts = ap.parse_args()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    model = ResNet((3, 4, 6, 3), width=64, classes=1000).eval()
    x = torch.randn(1, 3, 512, 512)
    output = "layer2"
    idx = np.linspace(8, 55, 8).round().astype(int)  # layer2 is 64x64 at 512
    units = np.array([(i, j) for i in idx for j in idx])
    measure_cropped(model, x[..., :256, :256], output, units[:1] // 2)  # warm-up
    t0 = time.perf_counter()
    cropped, info = measure_cropped(model, x, output, units, batch=opts.batch)
    t_crop = time.perf_counter() - t0
    sub = units[:: max(1, len(units) // opts.units_full)][: opts.units_full]
    t0 = time.perf_counter()
    full = measure_full(model, x, output, sub)
    t_full = time.perf_counter() - t0
    pick = [int(np.flatnonzero((units == u).all(1))[0]) for u in sub]
    err = float(np.abs(cropped[pick] - full).max() / np.abs(full).max())
    row = {"model": "torchvision-style ResNet-50 (width 64)", "input": [1, 3, 512, 512],
           "end_point": output, "units": len(units), "crops": info["crops"],
           "crop_seconds": t_crop, "crop_units_per_s": len(units) / t_crop,
           "full_units_timed": len(sub), "full_seconds": t_full,
           "full_units_per_s": len(sub) / t_full,
           "max_rel_diff": err}
    row["speedup"] = row["crop_units_per_s"] / row["full_units_per_s"]
    print(f"{len(units)} units at {output}: crop {row['crop_units_per_s']:.1f} units/s "
          f"({t_crop:.1f} s, crops {info['crops']}), one forward+backward per unit "
          f"{row['full_units_per_s']:.2f} units/s: {row['speedup']:.1f}x; max rel diff {err:.1e}")
    path = write_result("crop", {"target_speedup": 10, "threads": opts.threads,
                                 "load_average_1min": os.getloadavg()[0], "rows": [row]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
