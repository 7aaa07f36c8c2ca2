"""Experiment figures: ERF heatmaps against theory, centre profiles, depth curves, grids.

Every figure names model, end-point and input size in its title and has a colorbar where it
shows a map. Files are written atomically through :func:`experiments.io.save_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from .io import save_figure  # noqa: E402

LUO_FRACTION = 0.0455  # Luo et al.: pixels above 1 - 95.45% of the centre value


def _as_2d(erf: np.ndarray) -> np.ndarray:
    if erf.ndim == 1:
        return erf[None, :]
    if erf.ndim == 3:  # a volume: the central slice along the first axis
        return erf[erf.shape[0] // 2]
    return erf


def draw_heatmap(ax, erf: np.ndarray, box: np.ndarray | None, center: Sequence | None,
                 log: bool = False, contour: bool = True):
    """ERF map with the exact analytic region box, the theoretical centre and the Luo contour.

    ``box`` is (D, 2) inclusive [lo, hi] per input axis; ``center`` per axis (None: unknown).
    """
    img = _as_2d(np.asarray(erf, dtype=float))
    peak = float(np.nanmax(img)) if np.isfinite(img).any() else 1.0
    if log:
        positive = img[img > 0]
        floor = float(positive.min()) if positive.size else 1e-12
        im = ax.imshow(np.where(img > 0, img, floor), cmap="magma",
                       norm=LogNorm(vmin=max(floor, peak * 1e-8), vmax=peak),
                       interpolation="nearest")
    else:
        im = ax.imshow(img, cmap="magma", vmin=0, vmax=peak, interpolation="nearest")
    if box is not None and len(box) >= 2:
        (y0, y1), (x0, x1) = np.asarray(box)[-2:]
        if y0 <= y1 and x0 <= x1:
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                                   fill=False, ec="cyan", lw=1.2, label="exact region"))
    elif box is not None and len(box) == 1:
        (x0, x1), = np.asarray(box)
        ax.axvline(x0 - 0.5, color="cyan", lw=1.2)
        ax.axvline(x1 + 0.5, color="cyan", lw=1.2)
    if center is not None and all(c is not None for c in center[-2:]) and len(center) >= 2:
        ax.plot(center[-1], center[-2], "+", color="lime", ms=10, mew=1.5, label="centre")
    if contour and img.shape[0] > 2 and peak > 0:
        ax.contour(img, levels=[LUO_FRACTION * peak], colors="white", linewidths=0.8)
    return im


def heatmap_figure(erf: np.ndarray, box, center, title: str, log: bool = False):
    fig, ax = plt.subplots(figsize=(5, 4.4))
    im = draw_heatmap(ax, erf, box, center, log=log)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="mean |dy/dx| (log)" if log else "mean |dy/dx|")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("input x")
    ax.set_ylabel("input y")
    return fig


def profile_figure(erf: np.ndarray, gaussian_sigma: Sequence[float] | None,
                   gaussian_center: Sequence[float] | None, box, title: str):
    """1-D profiles through the peak along each axis, normalised, with the Gaussian fit."""
    erf = np.asarray(erf, dtype=float)
    peak = np.unravel_index(np.nanargmax(erf), erf.shape)
    fig, axes = plt.subplots(1, erf.ndim, figsize=(4.5 * erf.ndim, 3.2), squeeze=False)
    for a, ax in enumerate(axes[0]):
        idx = list(peak)
        idx[a] = slice(None)
        line = erf[tuple(idx)]
        norm = line.max() if line.max() > 0 else 1.0
        xs = np.arange(len(line))
        ax.plot(xs, line / norm, ".-", lw=1, ms=3, label="measured")
        if gaussian_sigma is not None and gaussian_center is not None:
            s, c = gaussian_sigma[a], gaussian_center[a]
            if s and np.isfinite(s):
                ax.plot(xs, np.exp(-0.5 * ((xs - c) / s) ** 2), "--",
                        label=f"Gaussian σ={s:.2f}")
        if box is not None:
            lo, hi = np.asarray(box)[a]
            ax.axvspan(lo - 0.5, hi + 0.5, color="cyan", alpha=0.12, label="exact region")
        ax.set_xlabel(f"input axis {a}")
        ax.set_ylabel("normalised")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def depth_figure(labels: Sequence[str], rf: Sequence[float | None],
                 erf_size: Sequence[float | None], title: str):
    """Theoretical r and measured ERF size per end-point along the network."""
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(labels) + 2), 3.6))
    xs = np.arange(len(labels))
    ax.plot(xs, [np.nan if v is None else v for v in rf], "o-", label="theoretical r")
    ax.plot(xs, [np.nan if v is None else v for v in erf_size], "s-", label="ERF size (Luo)")
    ax.set_xticks(xs, labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("pixels")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def grid_figure(panels: Sequence[tuple[np.ndarray, object, object, str]], log: bool = False):
    """Side-by-side heatmaps: (map, box, centre, title) per panel."""
    n = len(panels)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (erf, box, center, title) in zip(axes.flat, panels):
        im = draw_heatmap(ax, erf, box, center, log=log, contour=False)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def save(fig, path: Path, pdf: bool) -> list[Path]:
    return save_figure(fig, path, pdf)
