"""Capture vs analysis time per frontend: PyTorch (fast capture, torch.export) and JAX.

Run: ``python benchmarks/bench_frontends.py [--repeats N] [--export-repeats N]``; writes
results/frontends.json. Three models at full width, float32, on CPU:

- ResNet-50: TF-slim ``resnet_v1_50`` at 224 (torch: ``experiments.models.slim``, JAX:
  ``experiments.models.slim_jax``), end-point ``block4``;
- Inception-v3: TF-slim ``inception_v3`` at 299, end-point ``Mixed_7c``;
- U-Net (width 64, 4 downsamplings: the original U-Net's widths) at 256, the output (torch:
  ``experiments.models.torch_nets.UNet``; JAX: ``tests/models_jax.py``'s ``unet``, the only
  JAX U-Net in the repository, a twin of the torch one).

Per model and frontend, each phase is timed warm (one warm-up call) as the median of repeats:
``capture`` (torch: ``trace(..., capture=fast|export)``, recording + IR build; JAX:
``analytic.frontends.jax.capture``, ``jax.make_jaxpr`` + IR build), ``rsp`` (r, S, P of every
node: ``analyze_graph``) and ``regions`` (the exact regions of the end-point on a fresh
analysis, so no cached result is reused). r, S, P of the end-point are recorded per frontend
so the table shows that the frontends agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]
from common import median_time, write_result  # noqa: E402

from analytic.analysis import analyze_graph  # noqa: E402


def torch_models() -> dict:
    from experiments.models.slim import SLIM_MODELS
    from experiments.models.torch_nets import UNet
    return {"resnet_v1_50": (lambda: SLIM_MODELS["resnet_v1_50"](), (1, 3, 224, 224), "block4"),
            "inception_v3": (lambda: SLIM_MODELS["inception_v3"](), (1, 3, 299, 299),
                             "Mixed_7c"),
            "unet": (lambda: UNet(width=64, depth=4).eval(), (1, 3, 256, 256), None)}


def jax_models() -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from models_jax import unet, unet_init

    from experiments.models import slim_jax
    return {"resnet_v1_50": (lambda: slim_jax.resnet_v1_50(width=1.0), (1, 224, 224, 3),
                             "block4", "NHWC"),
            "inception_v3": (lambda: slim_jax.inception_v3(width=1.0), (1, 299, 299, 3),
                             "Mixed_7c", "NHWC"),
            "unet": (lambda: (unet, unet_init(width=64, depth=4)), (1, 256, 256, 3), None,
                     "NHWC")}


def phases(capture, output: str | None, reps: int) -> dict:
    """Median capture / r,S,P / regions seconds of one frontend (``capture()`` -> Graph)."""
    graph = capture()  # warm-up
    a = analyze_graph(graph, output)
    row = {"nodes": len(graph),
           "rsp": [None if v is None else [None if n is None else int(n) for n in v]
                   for v in (a.size, a.stride, a.padding)]}
    row["capture_s"] = median_time(capture, reps)
    row["rsp_s"] = median_time(lambda: analyze_graph(graph, output), reps)
    fresh = [analyze_graph(graph, output) for _ in range(reps + 1)]
    row["regions_s"] = median_time(lambda: fresh.pop().regions(), reps)
    row["total_s"] = row["capture_s"] + row["rsp_s"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--export-repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="resnet_v1_50,inception_v3,unet")
    ap.add_argument("--frontends", default="torch-fast,torch-export,jax")
    opts = ap.parse_args()
    wanted, frontends = opts.models.split(","), opts.frontends.split(",")
    rows = []
    if any(f.startswith("torch") for f in frontends):
        import torch

        from analytic.frontends.torch import trace
        torch.set_num_threads(opts.threads)
        for name, (make, shape, output) in torch_models().items():
            if name not in wanted:
                continue
            model = make()
            for method in ("fast", "export"):
                if f"torch-{method}" not in frontends:
                    continue
                reps = opts.repeats if method == "fast" else opts.export_repeats
                row = phases(lambda m=method, net=model, s=shape: trace(net, s, capture=m).graph,
                             output, reps)
                rows.append({"model": name, "frontend": f"torch ({method})",
                             "input_shape": list(shape), "end_point": output, **row})
                print(rows[-1])
    if "jax" in frontends:
        from analytic.frontends.jax import capture as jax_capture
        for name, (make, shape, output, layout) in jax_models().items():
            if name not in wanted:
                continue
            target = make()
            row = phases(lambda t=target, s=shape, lay=layout: jax_capture(t, s, layout=lay),
                         output, opts.repeats)
            rows.append({"model": name, "frontend": "jax (make_jaxpr)", "input_shape": list(shape),
                         "end_point": output, **row})
            print(rows[-1])
    for r in rows:
        same = {tuple(map(tuple, o["rsp"])) for o in rows if o["model"] == r["model"]}
        r["frontends_agree"] = len(same) == 1
    path = write_result("frontends", {"threads": opts.threads, "repeats": opts.repeats,
                                      "export_repeats": opts.export_repeats,
                                      "load_average_1min": os.getloadavg()[0],
                                      "time": time.strftime("%Y-%m-%d %H:%M"), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
