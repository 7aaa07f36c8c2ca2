"""kind = "table": analytic r, S, P of many models, compared with published values.

Each item names a model and an input size; the ``[reference]`` table points to a CSV with
columns ``model, receptive_field, effective_stride, effective_padding`` (and optionally
``imagenet_top1, gflops, family`` for the accuracy-vs-RF plot of the Distill article).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..config import Config, ConfigError, Key
from ..runner import RunContext
from .common import analyze_target, table_csv

ITEM_SCHEMA = {
    "model": Key((str,), None, "zoo name, package.module:attr or spec file", True),
    "framework": Key((str,), "", "torch | jax | spec (default: the model's first)",
                     choices=("", "torch", "jax", "spec")),
    "input_size": Key((int,), 224, "spatial input size (square)", low=1, high=100_000),
    "endpoint": Key((str,), "", "end-point (default: the zoo entry's published end-point)"),
    "label": Key((str,), "", "row name (default: the model)"),
}
EXTRA_TABLES = {"reference": {
    "csv": Key((str,), "", "CSV of published values, relative to the config file"),
    "plot_accuracy": Key((bool,), True, "draw ImageNet top-1 vs RF size (needs imagenet_top1)"),
}}


def run_item(item: dict, ctx: RunContext, item_id: str) -> dict:
    result, endpoint = analyze_target(item["model"], item["framework"] or None,
                                      item["input_size"], item["endpoint"] or None)
    return {"model": item["label"] or item["model"], "endpoint": endpoint,
            "input_size": item["input_size"], "size": list(result.size),
            "stride": list(result.stride), "padding": list(result.padding),
            "aligned": result.aligned, "nodes": len(result.graph)}


def _reference(config: Config) -> dict[str, dict]:
    rel = config.extra["reference"]["csv"]
    if not rel:
        return {}
    path = (config.path.parent / rel).resolve()
    if not path.is_file():
        raise ConfigError(f"{config.path}: reference.csv {rel!r} does not exist ({path})")
    with open(path, newline="") as f:
        return {row["model"]: row for row in csv.DictReader(f)}


def _compare(row: dict, ref: dict | None) -> str:
    if ref is None:
        return "no reference"
    want = [int(ref[k]) for k in ("receptive_field", "effective_stride", "effective_padding")]
    got = [row["size"][0], row["stride"][0], row["padding"][0]]
    same_axes = all(len(set(row[k])) == 1 for k in ("size", "stride", "padding"))
    return "equal" if got == want and same_axes else f"DIFFERENT (published {want})"


def finish(config: Config, results: list[dict], ctx: RunContext) -> list[Path]:
    ref = _reference(config)
    rows = []
    for r in results:
        rows.append({"model": r["model"], "endpoint": r["endpoint"],
                     "input_size": r["input_size"], "r": r["size"][0], "S": r["stride"][0],
                     "P": r["padding"][0], "aligned": r["aligned"],
                     "published": _compare(r, ref.get(r["model"]) if ref else None)})
        r["comparison"] = rows[-1]["published"]
    files = [table_csv(ctx.out / "table.csv", rows)]
    if ref and config.extra["reference"]["plot_accuracy"]:
        files += _accuracy_plot(results, ref, ctx)
    return files


def _accuracy_plot(results: list[dict], ref: dict[str, dict], ctx: RunContext) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import save_figure
    pts = [(r["size"][0], float(ref[r["model"]]["imagenet_top1"]),
            float(ref[r["model"]].get("gflops") or 0), r["model"], ref[r["model"]].get("family"))
           for r in results if r["model"] in ref and ref[r["model"]].get("imagenet_top1")]
    if not pts:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    families = sorted({p[4] or "" for p in pts})
    colors = {f: plt.cm.tab10(i) for i, f in enumerate(families)}
    for rf, acc, flops, name, fam in pts:
        ax.scatter(rf, acc * 100, s=20 + 12 * flops, color=colors[fam or ""], alpha=0.7,
                   edgecolors="k", label=fam)
        ax.annotate(name, (rf, acc * 100), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="lower right")
    ax.set_xlabel("receptive field size r (pixels, computed)")
    ax.set_ylabel("ImageNet top-1 accuracy (%, published)")
    ax.set_title("Accuracy vs receptive field (circle area ~ GFLOPs), after Araujo et al. 2019")
    ax.grid(alpha=0.3)
    return save_figure(fig, ctx.out / "accuracy_vs_rf.png", ctx.config.figures["pdf"])


def summary(config: Config, results: list[dict]) -> list[str]:
    lines = ["| model | end-point | size | r | S | P | vs published |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['model']} | {r['endpoint']} | {r['input_size']} | {r['size'][0]} "
                     f"| {r['stride'][0]} | {r['padding'][0]} | {r.get('comparison', '')} |")
    same = sum(1 for r in results if r.get("comparison") == "equal")
    lines += ["", f"{same} of {len(results)} rows equal the published values."]
    return lines
