"""Shared helpers for the benchmarks: timing by median of repeats, atomic JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# where results go: $BENCH_RESULTS if set (run_device.sh points it at the caller's folder)
RESULTS = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).parent / "results")


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count()}
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    if "jax" in sys.modules:  # only when the benchmark uses it (importing it costs seconds)
        info["jax"] = sys.modules["jax"].__version__
    return info


def write_result(name: str, payload: dict) -> Path:
    """Write ``<RESULTS>/<name>.json`` atomically (temp file + rename)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), **payload}
    fd, tmp = tempfile.mkstemp(dir=RESULTS, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, path)
    return path


def interior_grid(n: int, grid: int):
    """A grid x grid array of end-point positions of a square n x n end-point, clear of the
    outer eighth on each side (regions well inside the image)."""
    import numpy as np
    idx = np.linspace(n // 8, n - 1 - n // 8, grid).round().astype(int)
    return np.array([(i, j) for i in idx for j in idx])


def crop_row(description: str, shape, device: str, output: str, units, cropped, t_crop: float,
             sub, loop, t_loop: float, full=None, t_full: float | None = None) -> dict:
    """The result row of a crop benchmark (``bench_crop*.py``): units/s of the crop path
    (``cropped``, an ERFResult of ``units``), of the per-unit loop (maps ``loop`` of the units
    ``sub``) and of full-input erf.measure when timed (``full`` of ``sub``); the speed-up and
    the largest difference to the loop's maps relative to their maximum. Printed too."""
    import numpy as np
    pick = [int(np.flatnonzero((units == u).all(1))[0]) for u in sub]
    top = np.abs(loop).max()
    info = cropped.settings["crop"]
    row = {"model": description, "input": list(shape), "device": device,
           "end_point": output, "units": len(units), "crop_shapes": info["crop_shapes"],
           "crop_chunk": cropped.settings["crop_chunk"], "crop_seconds": t_crop,
           "crop_units_per_s": len(units) / t_crop, "full_units_timed": len(sub),
           "measure_full_seconds": t_full,
           "measure_full_units_per_s": None if t_full is None else len(sub) / t_full,
           "loop_seconds": t_loop, "loop_units_per_s": len(sub) / t_loop,
           "max_rel_diff": float(np.abs(cropped.maps[pick] - loop).max() / top)}
    if full is not None:
        row["max_rel_diff_full"] = float(np.abs(full.maps - loop).max() / top)
    row["speedup"] = row["crop_units_per_s"] / row["loop_units_per_s"]
    measured = ("" if t_full is None else
                f", full-input erf.measure {row['measure_full_units_per_s']:.2f}")
    print(f"{len(units)} units at {output} ({device}): crop {row['crop_units_per_s']:.1f} "
          f"units/s (crops {info['crop_shapes']}, {row['crop_chunk']} per pass){measured}, "
          f"one forward+backward per unit {row['loop_units_per_s']:.2f} units/s: "
          f"{row['speedup']:.1f}x; max rel diff {row['max_rel_diff']:.1e}")
    return row
