"""Heatmaps of ERF maps with the analytic region box and centre (matplotlib, Agg, no pyplot).

1-D maps are drawn as a curve with the region shaded, 2-D as an image with the box, 3-D as the
2-D slice through the centre along the first axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def heatmap(erf_map: np.ndarray, box: np.ndarray | None = None,
            center: Sequence[float | None] | None = None, title: str = "",
            unit_centers: np.ndarray | None = None, label: str = "mean |gradient|"):
    """A matplotlib ``Figure`` of ``erf_map`` with the inclusive ``box`` (D, 2) and ``center``.

    ``unit_centers`` (k, D) marks several units' centres (a grid measurement).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    a = np.asarray(erf_map, dtype=np.float64)
    fig = Figure(figsize=(6.4, 5.2) if a.ndim > 1 else (7.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if a.ndim == 3:  # the slice through the centre along axis 0
        c0 = center[0] if center is not None and center[0] is not None else a.shape[0] // 2
        i = int(np.clip(round(c0), 0, a.shape[0] - 1))
        a = a[i]
        title = f"{title} (slice {i} of axis 0)".strip()
        box = None if box is None else np.asarray(box)[1:]
        center = None if center is None else list(center)[1:]
        unit_centers = None if unit_centers is None else np.asarray(unit_centers)[:, 1:]
    if a.ndim == 1:
        x = np.arange(a.size)
        ax.plot(x, a, color="C0", drawstyle="steps-mid")
        if box is not None:
            ax.axvspan(box[0][0] - 0.5, box[0][1] + 0.5, color="C1", alpha=0.15,
                       label="analytic region")
        if center is not None and center[0] is not None:
            ax.axvline(center[0], color="C3", ls="--", lw=1, label="analytic centre")
        ax.set_xlabel("input index")
        ax.set_ylabel(label)
        if box is not None or center is not None:
            ax.legend(loc="upper right", fontsize=8)
    elif a.ndim == 2:
        image = ax.imshow(a, cmap="viridis", interpolation="nearest", origin="upper")
        fig.colorbar(image, ax=ax, label=label, shrink=0.9)
        if box is not None:
            (u0, v0), (u1, v1) = box
            ax.add_patch(Rectangle((u1 - 0.5, u0 - 0.5), v1 - u1 + 1, v0 - u0 + 1, fill=False,
                                   ec="white", lw=1.2, ls="--", label="analytic region"))
        if unit_centers is not None and len(unit_centers):
            uc = np.asarray(unit_centers, dtype=float)
            ax.scatter(uc[:, 1], uc[:, 0], s=8, c="white", marker="+", lw=0.8,
                       label="unit centres")
        if center is not None and None not in center[:2]:
            ax.plot([center[1]], [center[0]], marker="x", color="red", ms=8, mew=2, ls="none",
                    label="analytic centre")
        ax.set_xlabel("input axis 1")
        ax.set_ylabel("input axis 0")
        ax.set_xlim(-0.5, a.shape[1] - 0.5)
        ax.set_ylim(a.shape[0] - 0.5, -0.5)
        if box is not None or center is not None:
            ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    else:
        ax.text(0.5, 0.5, f"no plot for a {a.ndim}-D map", ha="center", va="center")
    ax.set_title(title, fontsize=9)
    return fig


def save_figure(fig, path) -> None:
    """Write ``fig`` as PNG to ``path`` (any file object or path; Agg canvas, no GUI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=110)
