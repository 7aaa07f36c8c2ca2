"""Analysis time vs graph size for spec graphs of 10 to 100,000 nodes (chain and branched).

Run: ``python benchmarks/bench_graph_scaling.py``; writes results/graph_scaling.json with the
fitted exponent of time ~ nodes^k per phase (1.0 = linear).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]
from common import write_result  # noqa: E402

from analytic import analyze  # noqa: E402
from analytic.spec import load_spec  # noqa: E402


def spec(n: int, branched: bool) -> dict:
    nodes, prev = [], "input"
    for i in range(n):
        if branched and i % 3 == 2:
            nodes.append({"name": f"n{i}", "op": "add", "inputs": [prev, f"n{i - 2}"]})
        else:
            nodes.append({"name": f"n{i}", "op": "conv", "inputs": [prev], "kernel": 3, "pad": 1})
        prev = f"n{i}"
    return {"input": [16, 16], "nodes": nodes}


def main() -> None:
    sizes = [10, 100, 1000, 10_000, 100_000]
    rows = []
    for branched in (False, True):
        for n in sizes:
            s = spec(n, branched)
            t0 = time.perf_counter()
            graph = load_spec(s)
            t1 = time.perf_counter()
            result = analyze(graph)
            t2 = time.perf_counter()
            result.regions()
            t3 = time.perf_counter()
            rows.append({"nodes": n, "branched": branched, "build_s": t1 - t0,
                         "rsp_s": t2 - t1, "regions_s": t3 - t2})
            print(rows[-1], flush=True)
    fits = {}
    for branched in (False, True):
        sub = [r for r in rows if r["branched"] == branched and r["nodes"] >= 1000]
        for phase in ("build_s", "rsp_s", "regions_s"):
            k = np.polyfit(np.log([r["nodes"] for r in sub]), np.log([r[phase] for r in sub]), 1)[0]
            fits[f"{'branched' if branched else 'chain'}_{phase[:-2]}"] = round(float(k), 3)
    print("fitted exponents (>= 1000 nodes):", fits)
    write_result("graph_scaling", {"rows": rows, "exponents": fits})


if __name__ == "__main__":
    main()
