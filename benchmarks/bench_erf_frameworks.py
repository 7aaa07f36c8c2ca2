"""ERF throughput, PyTorch vs JAX: erf.measure (with and without packing) vs a per-unit loop
vs the bare batched floor, on the same model geometry, units and dtype (float32).

Models (``benchmarks/erf_models.py``): ``resnet50`` (slim resnet_v1_50 at 224, end-point
``block3.unit_5``, 14x14) and ``small`` (small_resnet at 96, ``layer3``, 12x12). Units: a grid
(``grid:8`` = 64 units by default); each unit's cotangent is 1 on every channel of its position.
Paths, each timed ``--repeat`` times after one warm-up (median units/s reported):

- ``measure``: ``erf.measure(model, shape, output=..., units=..., device=..., analysis=a)``
  with its default chunk: the library path (model copy, forward, chunked vmapped vjp,
  reduction to maps); the analysis ``a`` is made once beforehand (capture is timed by
  ``bench_frontends.py``);
- ``measure pack``: the same with ``pack=True`` (units with disjoint exact regions share one
  cotangent, so fewer backward passes);
- ``loop``: one vjp per unit on one retained forward (torch: ``autograd.grad`` with
  ``retain_graph``; JAX: the jitted ``vjp`` function of one ``jax.vjp``), ``--loop-units`` of
  the units, forward not timed;
- ``floor``: the bare batched backward of every unit at once, no chunking, no reduction
  (torch: ``autograd.grad(..., is_grads_batched=True)`` on a retained graph, and
  ``torch.func.vjp`` + ``vmap`` forward included; JAX: ``jit(vmap(vjp_fn))`` on a retained
  forward, and ``jit`` of forward + ``vmap(vjp)``). The faster one is the floor.

Ratios the issue targets: floor rate / measure rate (<= 1.3x) and measure rate / loop rate
(>= 10x for >= 64 units). On GPU (``--device cuda``) every timed call is synchronised (torch
``cuda.synchronize``, JAX ``block_until_ready``). JAX's ``erf.measure`` builds a new jitted
backward per call, so its time includes XLA compilation (as a user's call would).

    python benchmarks/bench_erf_frameworks.py --framework jax --model resnet50 --threads 1

writes ``results/erf_frameworks_<model>_<framework>_<threads>t.json`` (``..._cuda.json`` on GPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]
from common import write_result  # noqa: E402
from erf_models import MODELS, cotangents, load  # noqa: E402

import erf  # noqa: E402
from analytic import analyze  # noqa: E402
from erf.impulses import select_units  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framework", choices=("torch", "jax"), default="torch")
    ap.add_argument("--model", choices=MODELS, default="resnet50")
    ap.add_argument("--units", default="grid:8")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (torch; JAX: XLA flag)")
    ap.add_argument("--loop-units", type=int, default=8, help="units timed in the loop")
    ap.add_argument("--repeat", type=int, default=3, help="timings per path")
    args = ap.parse_args()
    if args.framework == "jax" and args.device == "cpu":
        # must precede the first jax import: XLA's CPU client reads it at start-up
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_"
                                   f"eigen={'false' if args.threads == 1 else 'true'} "
                                   f"intra_op_parallelism_threads={args.threads}")
    b = load(args.model, args.framework)
    rates: dict[str, list[float]] = {}
    if args.framework == "torch":
        paths, sync, k, units, extra = torch_paths(b, args)
    else:
        paths, sync, k, units, extra = jax_paths(b, args)
    layout = b.layout if args.framework == "jax" else None
    analysis = analyze(b.model, b.input_shape, output=b.output,
                       **({"layout": layout} if layout else {}))
    settings = {}

    def measure(pack: bool, units=None):
        r = erf.measure(b.model, b.input_shape, output=b.output, units=units or args.units,
                        pack=pack, device=args.device, layout=layout, analysis=analysis)
        settings["pack" if pack else "plain"] = {
            key: r.settings.get(key) for key in ("chunk", "groups", "device", "dtype")}
        assert np.isfinite(r.mean_map).all()
        return r
    all_paths = {"erf.measure": (k, lambda: measure(False)),
                 "erf.measure pack=True": (k, lambda: measure(True)),
                 "erf.measure, 1 unit (per-call setup)": (1, lambda: measure(False, "center")),
                 **paths}
    for name, (n, fn) in all_paths.items():
        sync(fn())  # warm-up (compilation, allocator)
        for _ in range(args.repeat):
            t = time.perf_counter()
            sync(fn())
            rates.setdefault(name, []).append(n / (time.perf_counter() - t))
        print(f"  {name:50s} {statistics.median(rates[name]):9.2f} units/s", flush=True)
    med = {n: statistics.median(v) for n, v in rates.items()}
    floor = max(v for n, v in med.items() if n.startswith("floor"))
    loop = med["loop: one vjp per unit"]
    ratios = {m: {"floor_over_ours": floor / med[m], "ours_over_loop": med[m] / loop}
              for m in ("erf.measure", "erf.measure pack=True")}
    # per-unit cost without the per-call setup (model copy, first forward): (t_k - t_1)/(k-1)
    t_k, t_1 = k / med["erf.measure"], 1 / med["erf.measure, 1 unit (per-call setup)"]
    marginal = (k - 1) / (t_k - t_1) if t_k > t_1 else float("inf")
    ratios["erf.measure marginal"] = {"floor_over_ours": floor / marginal,
                                      "ours_over_loop": marginal / loop}
    gpu = args.device != "cpu"
    name = f"erf_frameworks_{args.model}_{args.framework}_" + (
        "cuda" if gpu else f"{args.threads}t")
    info = {"framework": args.framework, "model": b.description, "model_key": args.model,
            "input": list(b.input_shape), "layout": b.layout, "output": b.output,
            "units": args.units, "k": k, "device": args.device, "threads": args.threads,
            "repeat": args.repeat, "loop_units": min(args.loop_units, k),
            "measure_settings": settings, "units_per_second_median": med,
            "measure_setup_seconds": t_1, "measure_marginal_units_per_second": marginal,
            "units_per_second_all": rates, "floor_units_per_second": floor, "ratios": ratios,
            "targets": {"floor_over_ours_max": 1.3, "ours_over_loop_min": 10},
            "load_average_1min": os.getloadavg()[0], **extra}
    for m, r in ratios.items():
        print(f"  {m}: floor/ours {r['floor_over_ours']:.2f}x (target <= 1.3), "
              f"ours/loop {r['ours_over_loop']:.2f}x (target >= 10)")
    print(f"  -> {write_result(name, info)}")


def torch_paths(b, args):
    import torch
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = b.model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(b.input_shape, device=device, requires_grad=True)
    y = b.endpoint_fn(x)
    units = select_units(args.units, tuple(y.shape[2:]))
    k = len(units)
    cot = torch.as_tensor(cotangents("torch", "NCHW", tuple(y.shape), units), device=device)
    n = min(args.loop_units, k)

    def sync(_):
        if device.type == "cuda":
            torch.cuda.synchronize()

    def func_path():
        _, vjp = torch.func.vjp(b.endpoint_fn, x.detach())
        return torch.func.vmap(vjp)(cot)
    paths = {
        "loop: one vjp per unit": (n, lambda: [torch.autograd.grad(y, x, cot[j],
                                                                   retain_graph=True)
                                               for j in range(n)]),
        "floor: autograd.grad(is_grads_batched), no forward": (
            k, lambda: torch.autograd.grad(y, x, cot, retain_graph=True,
                                           is_grads_batched=True)),
        "floor: func.vjp + vmap, forward included": (k, func_path)}
    extra = {"torch": torch.__version__,
             "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}
    b.model = model  # erf.measure copies it to the device itself
    return paths, sync, k, units, extra


def jax_paths(b, args):
    import jax
    import jax.numpy as jnp
    kind = {"cuda": "gpu"}.get(args.device, args.device)
    dev = jax.devices(kind)[0]
    fn, params = b.model
    params = jax.device_put(params, dev)
    x = jax.device_put(jnp.asarray(np.random.default_rng(0).normal(size=b.input_shape),
                                   jnp.float32), dev)
    f = b.endpoint_fn
    forward = jax.jit(lambda p, x: jax.vjp(lambda v: f(p, v), x))
    y, vjp_fn = forward(params, x)
    spatial = tuple(y.shape[2:]) if b.layout == "NCHW" else tuple(y.shape[1:3])
    units = select_units(args.units, spatial)
    k = len(units)
    cot = jax.device_put(jnp.asarray(cotangents("jax", b.layout, tuple(y.shape), units)), dev)
    n = min(args.loop_units, k)
    one = jax.jit(lambda vf, c: vf(c)[0])
    batched = jax.jit(lambda vf, c: jax.vmap(vf)(c)[0])
    whole = jax.jit(lambda p, x, c: jax.vmap(jax.vjp(lambda v: f(p, v), x)[1])(c)[0])

    def sync(out):
        jax.block_until_ready(out)
    paths = {
        "loop: one vjp per unit": (n, lambda: [one(vjp_fn, cot[j]) for j in range(n)]),
        "floor: jit(vmap(vjp_fn)), no forward": (k, lambda: batched(vjp_fn, cot)),
        "floor: jit(forward + vmap(vjp)), forward included": (k, lambda: whole(params, x, cot))}
    extra = {"jax": jax.__version__, "jax_device": str(dev)}
    b.model = (fn, params)
    return paths, sync, k, units, extra


if __name__ == "__main__":
    main()
