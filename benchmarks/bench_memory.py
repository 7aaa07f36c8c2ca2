"""Peak memory of erf.measure vs units per chunk, PyTorch and JAX, one fresh process per point.

Model (``benchmarks/erf_models.py``): ``resnet50`` (slim resnet_v1_50 at 224, end-point
``block3.unit_5``, 14x14x1024) by default, or ``small``; units ``grid:8`` (64). For every
chunk size (default 1, 2, 4, 8, 16, 32, 64) a child process builds the model, runs one forward
pass to the end-point (plus the analysis), records its memory, then runs
``erf.measure(..., chunk=c, analysis=a)`` once and records the peak:

- CPU: ``ru_maxrss`` of the child (peak RSS) after the run; the baseline is the RSS
  (``/proc/self/status`` VmRSS, else ``ru_maxrss``) after the build and forward; reported: both
  and the difference, in MiB;
- GPU (``--device cuda``): torch ``cuda.max_memory_allocated`` (peak reset after the forward,
  so the baseline is what stays allocated), JAX ``device.memory_stats()['peak_bytes_in_use']``
  with the baseline ``bytes_in_use`` after a jitted forward (JAX cannot reset its peak: if the
  forward's own peak were higher than the measurement's, the increase would be overstated
  by at most ``device_baseline_peak_mib - device_baseline_mib``); the child's RSS too.

Also the wall time of the run (one run: indicative only). Run:

    python benchmarks/bench_memory.py --framework torch [--device cuda] [--chunks 1,8,64]

writes ``results/memory_<model>_<framework>.json`` (``..._cuda.json`` on GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from common import write_result  # noqa: E402
from erf_models import MODELS, load  # noqa: E402

MIB = 2 ** 20


def rss_now() -> float:
    """Current resident set size in MiB (peak RSS where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss()


def peak_rss() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 if sys.platform != "darwin" else kib / MIB


def child(args) -> dict:
    """One point: build, forward, baseline; erf.measure with the chunk; peak. Returns a row."""
    import erf
    from analytic import analyze
    b = load(args.model, args.framework)
    gpu = args.device != "cpu"
    row_extra: dict = {}
    layout = b.layout if args.framework == "jax" else None
    analysis = analyze(b.model, b.input_shape, output=b.output,
                       **({"layout": layout} if layout else {}))
    if args.framework == "torch":
        import torch
        torch.set_num_threads(args.threads)
        dev = torch.device(args.device)
        b.model.to(dev)
        with torch.no_grad():
            b.endpoint_fn(torch.zeros(b.input_shape, device=dev))
        if gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base_dev = torch.cuda.max_memory_allocated() / MIB
    else:
        import jax
        import jax.numpy as jnp
        dev = jax.devices({"cuda": "gpu"}.get(args.device, args.device))[0]
        fn, params = b.model
        params = jax.device_put(params, dev)
        # jitted: an eager forward keeps many more buffers alive than the measurement and
        # would set a peak that JAX cannot reset
        jax.block_until_ready(jax.jit(b.endpoint_fn)(params, jax.device_put(
            jnp.zeros(b.input_shape, jnp.float32), dev)))
        b.model = (fn, params)
        if gpu:
            stats = dev.memory_stats()
            base_dev = stats["bytes_in_use"] / MIB
            row_extra = {"device_baseline_peak_mib": stats["peak_bytes_in_use"] / MIB}
    row = {"chunk": args.chunk, "baseline_rss_mib": rss_now(),
           "baseline_peak_rss_mib": peak_rss(), **row_extra}
    t = time.perf_counter()
    r = erf.measure(b.model, b.input_shape, output=b.output, units=args.units, chunk=args.chunk,
                    device=args.device, layout=layout, analysis=analysis)
    row["seconds"] = time.perf_counter() - t
    row["units"] = len(r.units)
    row["chunk_used"] = r.settings.get("chunk")
    row["peak_rss_mib"] = peak_rss()
    row["rss_increase_mib"] = row["peak_rss_mib"] - row["baseline_rss_mib"]
    if gpu:
        if args.framework == "torch":
            peak = torch.cuda.max_memory_allocated() / MIB
        else:
            peak = dev.memory_stats()["peak_bytes_in_use"] / MIB
        row.update(device_baseline_mib=base_dev, device_peak_mib=peak,
                   device_increase_mib=peak - base_dev)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framework", choices=("torch", "jax"), default="torch")
    ap.add_argument("--model", choices=MODELS, default="resnet50")
    ap.add_argument("--units", default="grid:8")
    ap.add_argument("--chunks", default="1,2,4,8,16,32,64")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.framework == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.chunk is not None:
        print("ROW " + json.dumps(child(args)), flush=True)
        return
    rows = []
    for c in (int(v) for v in args.chunks.split(",")):
        cmd = [sys.executable, __file__, "--framework", args.framework, "--model", args.model,
               "--units", args.units, "--device", args.device, "--threads", str(args.threads),
               "--chunk", str(c)]
        env = dict(os.environ)
        if args.framework == "jax" and args.device == "cpu":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                                f"{'false' if args.threads == 1 else 'true'} "
                                f"intra_op_parallelism_threads={args.threads}")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        found = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
        if proc.returncode or not found:
            rows.append({"chunk": c, "error": (proc.stderr or proc.stdout).strip()[-800:]})
            print(f"chunk {c}: FAILED (exit {proc.returncode})\n{rows[-1]['error']}",
                  file=sys.stderr)
            continue
        rows.append(json.loads(found[-1][4:]))
        r = rows[-1]
        dev = (f", device peak {r['device_peak_mib']:.0f} MiB (+{r['device_increase_mib']:.0f})"
               if "device_peak_mib" in r else "")
        print(f"chunk {c:3d}: peak RSS {r['peak_rss_mib']:7.0f} MiB, baseline "
              f"{r['baseline_rss_mib']:7.0f} MiB, +{r['rss_increase_mib']:6.0f} MiB{dev}, "
              f"{r['seconds']:.1f} s", flush=True)
    gpu = args.device != "cpu"
    name = f"memory_{args.model}_{args.framework}" + ("_cuda" if gpu else "")
    path = write_result(name, {"framework": args.framework, "model_key": args.model,
                               "units": args.units, "device": args.device,
                               "threads": args.threads, "rows": rows})
    print(f"wrote {path}")
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
