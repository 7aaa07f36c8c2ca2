"""Crop measurement in JAX: units/s of ``erf.measure(crop=True)`` vs one forward + backward per
unit on the full image, on TF-slim ``resnet_v1_50`` (full width, NHWC, 'SAME' padding written
as explicit pads) at ``block2`` (S 16), an 8x8 grid of 64 interior units.

Run: ``python benchmarks/bench_crop_jax.py [--size 512] [--device cpu|cuda] [--threads 1]``;
writes results/crop_jax_<size>[_cuda].json in the format of ``bench_crop.py`` (the report lists
both). The per-unit baseline is one jitted forward + vjp of the end-point per unit (compiled
once, timed on ``--units-full`` units); both paths are warmed up first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--units-full", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    opts = ap.parse_args()
    if opts.device == "cpu":  # before the first jax import
        os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={opts.threads > 1} "
                                   f"intra_op_parallelism_threads={opts.threads}").lower()
    import jax
    import jax.numpy as jnp
    import numpy as np
    from common import crop_row, interior_grid, write_result

    import erf
    from erf.jax_backend import _truncate
    from experiments.models import slim_jax

    warnings.simplefilter("error")  # a refused crop must not pass unnoticed
    fn, params = slim_jax.resnet_v1_50(width=1.0)
    dev = jax.devices({"cuda": "gpu"}.get(opts.device, opts.device))[0]
    params = jax.device_put(params, dev)
    output, stride, shape = "block2", 16, (1, opts.size, opts.size, 3)
    units = interior_grid(opts.size // stride, 8)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    kw = dict(output=output, device=opts.device, layout="NHWC")
    model = (fn, params)
    erf.measure(model, inputs=x, units=units[:2], crop=True, **kw)  # warm-up (compiles)
    t = time.perf_counter()
    cropped = erf.measure(model, inputs=x, units=units, crop=True, **kw)
    t_crop = time.perf_counter() - t

    f = _truncate(fn, output)
    step = jax.jit(lambda p, x, c: jax.vjp(partial(f, p), x)[1](c)[0])
    xd = jax.device_put(jnp.asarray(x), dev)
    y = jax.eval_shape(f, params, xd)
    sub = units[:: len(units) // opts.units_full][: opts.units_full]

    def loop():
        maps = []
        for u in sub:
            c = np.zeros(y.shape, np.float32)
            c[0, u[0], u[1], :] = 1
            maps.append(np.abs(np.asarray(step(params, xd, jnp.asarray(c))))[0].sum(-1))
        return np.stack(maps)
    loop()  # warm-up (compiles)
    t = time.perf_counter()
    ref = loop()
    t_loop = time.perf_counter() - t
    row = crop_row("slim resnet_v1_50 (JAX, NHWC)", shape, opts.device, output, units,
                   cropped, t_crop, sub, ref, t_loop)
    name = f"crop_jax_{opts.size}" + ("" if opts.device == "cpu" else "_cuda")
    path = write_result(name, {"target_speedup": 10, "threads": opts.threads,
                               "jax": jax.__version__, "load_average_1min": os.getloadavg()[0],
                               "rows": [row]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
