"""kind = "depth": Luo et al. (NeurIPS 2016), ERF size vs depth of conv stacks.

Each item is one stack family (weights, nonlinearity, subsampling, dilation, skips) swept
over ``depths``; for every depth n the centre unit's ERF is measured
(:func:`experiments.models.luo.conv_stack`, input just larger than the RF), its Luo size
(sqrt of the pixels above 4.55% of the centre) and the theoretical r. The log-log slope of
ERF size vs n is fitted (Luo: 0.5 for stride-1 stacks) and of ERF size / r vs n (-0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import Config, Key
from ..io import write_npy
from ..runner import RunContext
from .common import table_csv

ITEM_SCHEMA = {
    "label": Key((str,), None, "name of the stack family", True),
    "depths": Key((list,), [2, 4, 8, 16, 32, 64], "numbers of layers n"),
    "kernel": Key((int,), 3, "kernel size k", low=1, high=99),
    "channels": Key((int,), 1, "channels of every layer", low=1, high=4096),
    "weights": Key((str,), "uniform", "uniform | random", choices=("uniform", "random")),
    "nonlinearity": Key((str,), "none", "none | relu | tanh | sigmoid",
                        choices=("none", "relu", "tanh", "sigmoid")),
    "subsample_every": Key((int,), 0, "stride 2 every this many layers (0: never)", low=0),
    "dilation": Key((int,), 1, "dilation of every layer", low=1, high=64),
    "skip": Key((bool,), False, "residual connection around every stride-1 layer"),
    "samples": Key((int,), 1, "random inputs (and weight draws) averaged", low=1),
    "margin": Key((int,), 8, "input pixels beyond the RF on each side", low=0),
    "max_input": Key((int,), 512, "cap on the input size (RF grows fast with subsampling)",
                     low=8),
}


def run_item(item: dict, ctx: RunContext, item_id: str) -> dict:
    import torch

    import erf
    from analytic import analyze
    from experiments.models.luo import conv_stack
    rows = []
    for n in item["depths"]:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{ctx.config.path}: items '{item['label']}': depths must be "
                             f"positive integers, got {n!r}")

        def build(seed: int, n=n):
            return conv_stack(n, item["kernel"], item["channels"], item["weights"],
                              item["nonlinearity"], item["subsample_every"], item["dilation"],
                              item["skip"], seed=seed)
        probe = build(0)
        # the input just holds the centre unit's RF (closed form of the stack) plus a margin
        size = max(8, min(item["max_input"], _rf(n, item) + 2 * item["margin"]))
        shape = (1, item["channels"], size, size)
        r = analyze(probe, shape).size[0]
        init = None
        if item["weights"] == "random":
            def init(model, seed, build=build):  # a fresh draw of the whole stack per sample
                fresh = build(seed)
                with torch.no_grad():
                    for p, q in zip(model.parameters(), fresh.parameters()):
                        p.copy_(q)
        result = erf.measure(probe, shape, units="center", samples=item["samples"],
                             seed=ctx.seed, device=ctx.device, init=init,
                             input_dist="normal")
        luo = result.metrics.get("luo", {}).get("size")
        write_npy(ctx.item_dir(item_id) / f"n{n}.npy", result.mean_map)
        rows.append({"n": n, "input": size, "r": r, "erf_size": luo,
                     "ratio": (luo / r) if luo and r else None,
                     "sigma": result.metrics.get("gaussian", {}).get("sigma"),
                     "clipped": bool(r is not None and r > size)})
    slope = _slope([x["n"] for x in rows], [x["erf_size"] for x in rows])
    ratio_slope = _slope([x["n"] for x in rows], [x["ratio"] for x in rows])
    return {"label": item["label"], "rows": rows, "slope": slope, "ratio_slope": ratio_slope}


def _rf(n: int, item: dict) -> int:
    """Closed form (paper eq. 2) of the stack's r, to size the input."""
    span = item["dilation"] * (item["kernel"] - 1) + 1
    r, stride = 1, 1
    for i in range(n):
        r += (span - 1) * stride
        if item["subsample_every"] and (i + 1) % item["subsample_every"] == 0:
            stride *= 2
    return r


def _slope(xs, ys) -> float | None:
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None and y > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def finish(config: Config, results: list[dict], ctx: RunContext) -> list[Path]:
    rows = [{"family": r["label"], **{k: v for k, v in row.items() if k != "sigma"}}
            for r in results for row in r["rows"]]
    files = [table_csv(ctx.out / "depth_table.csv", rows),
             table_csv(ctx.out / "slopes.csv", [{"family": r["label"], "erf_size_slope":
                                                 r["slope"], "erf_over_rf_slope":
                                                 r["ratio_slope"]} for r in results])]
    files += _plots(results, ctx, config.figures["pdf"])
    return files


def _plots(results: list[dict], ctx: RunContext, pdf: bool) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import figures
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        ns = [x["n"] for x in r["rows"]]
        slope = "n/a" if r["slope"] is None else f"{r['slope']:.2f}"
        axes[0].plot(ns, [x["erf_size"] for x in r["rows"]], "o-",
                     label=f"{r['label']} (slope {slope})")
        axes[1].plot(ns, [x["ratio"] for x in r["rows"]], "o-", label=r["label"])
    for ax, what in zip(axes, ("ERF size (pixels)", "ERF size / theoretical r")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("layers n")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_title("ERF grows like sqrt(n) (Luo et al. 2016)", fontsize=9)
    axes[1].set_title("... so it shrinks relative to the RF like 1/sqrt(n)", fontsize=9)
    fig.tight_layout()
    files = figures.save(fig, ctx.out / "erf_vs_depth.png", pdf)
    panels = []
    for r in results:
        for x in r["rows"][-1:]:
            m = np.load(ctx.out / "items" / r["id"] / f"n{x['n']}.npy")
            panels.append((m, None, None, f"{r['label']} n={x['n']}"))
    if panels:
        files += figures.save(figures.grid_figure(panels), ctx.out / "erf_deepest.png", pdf)
    return files


def summary(config: Config, results: list[dict]) -> list[str]:
    lines = ["| family | depths | slope log(ERF) vs log(n) | slope log(ERF/r) vs log(n) |",
             "|---|---|---|---|"]
    for r in results:
        ns = ",".join(str(x["n"]) for x in r["rows"])
        fmt = (lambda v: "n/a" if v is None else f"{v:.3f}")
        lines.append(f"| {r['label']} | {ns} | {fmt(r['slope'])} | {fmt(r['ratio_slope'])} |")
    lines += ["", "Luo et al. 2016 predict 0.5 and -0.5 for stride-1 stacks without "
              "nonlinearity; subsampling and dilation make the ERF grow faster."]
    return lines
