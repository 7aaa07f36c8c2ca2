"""End-to-end analysis of ResNet-50-sized models at 224 on CPU: fast capture vs torch.export.

Run: ``python benchmarks/bench_capture.py [--repeats N]``; writes results/capture.json.
Warm timings (one warm-up run each), median of repeats, capture included: ``analyze(model,
(1, 3, 224, 224), capture=...)`` (IR + r, S, P of every node), and the same with the exact
regions of the last spatial end-point. Also the fast path's phases (record, build, analyse).
Target (issue 11): <= 100 ms warm for the fast path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
from common import median_time, write_result  # noqa: E402

from analytic import analyze  # noqa: E402
from analytic.analysis import analyze_graph  # noqa: E402
from analytic.frontends.torch import trace  # noqa: E402


def models() -> dict:
    from experiments.models.slim import SLIM_MODELS
    from experiments.models.torch_nets import ResNet
    return {
        "slim resnet_v1_50 (TF SAME padding via F.pad)": (SLIM_MODELS["resnet_v1_50"](),
                                                          "block4"),
        "torchvision-style ResNet-50 (width 64, 1000 classes)": (
            ResNet((3, 4, 6, 3), width=64, classes=1000).eval(), "layer4"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--export-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    opts = ap.parse_args()
    torch.set_num_threads(opts.threads)
    shape = (1, 3, 224, 224)
    rows = []
    for name, (model, end) in models().items():
        row: dict = {"model": name, "input_shape": list(shape), "end_point": end}
        for method, reps in (("fast", opts.repeats), ("export", opts.export_repeats)):
            a = analyze(model, shape, capture=method)
            row[f"{method}_nodes"] = len(a.graph)
            row[f"{method}_analyze_s"] = median_time(
                lambda m=method, net=model: analyze(net, shape, capture=m), reps)
            row[f"{method}_analyze_regions_s"] = median_time(
                lambda m=method, net=model, e=end: analyze(net, shape, capture=m,
                                                           output=e).regions(), reps)
        rec, build, ana = [], [], []
        for _ in range(opts.repeats):
            cap = trace(model, shape, capture="fast")
            t = time.perf_counter()
            analyze_graph(cap.graph)
            ana.append(time.perf_counter() - t)
            rec.append(cap.export_seconds)
            build.append(cap.build_seconds)
        row["fast_phases_s"] = {"record": statistics.median(rec),
                                "build": statistics.median(build),
                                "analyze": statistics.median(ana)}
        row["speedup"] = row["export_analyze_s"] / row["fast_analyze_s"]
        af = analyze(model, shape, capture="fast", output=end)
        ae = analyze(model, shape, capture="export", output=end)
        row["same_rsp"] = (af.size, af.stride, af.padding) == (ae.size, ae.stride, ae.padding)
        row["rsp"] = [list(af.size), list(af.stride), list(af.padding)]
        rows.append(row)
        print(f"{name}: fast {row['fast_analyze_s'] * 1e3:.1f} ms (+regions "
              f"{row['fast_analyze_regions_s'] * 1e3:.1f} ms; record "
              f"{row['fast_phases_s']['record'] * 1e3:.1f}, build "
              f"{row['fast_phases_s']['build'] * 1e3:.1f}, analyse "
              f"{row['fast_phases_s']['analyze'] * 1e3:.1f}), export "
              f"{row['export_analyze_s'] * 1e3:.0f} ms: {row['speedup']:.0f}x; {end} r,S,P "
              f"{row['rsp']} same={row['same_rsp']}")
    path = write_result("capture", {"target_s": 0.1, "threads": opts.threads,
                                    "load_average_1min": os.getloadavg()[0], "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
