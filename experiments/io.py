"""Atomic file writes: a crashed run never leaves a half-written result behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file onto ``path`` (same directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | Path, payload: Any) -> Path:
    return write_text(path, json.dumps(payload, indent=1, allow_nan=False) + "\n")


def write_npy(path: str | Path, array: Any) -> Path:
    import numpy as np

    def save(p: Path) -> None:
        with open(p, "wb") as f:
            np.save(f, array)
    return atomic_write(path, save)


def save_figure(fig: Any, path: str | Path, pdf: bool = False) -> list[Path]:
    """Save a matplotlib figure as PNG (and PDF) atomically; closes it."""
    import matplotlib.pyplot as plt
    path = Path(path)
    out = [atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=120,
                                                    bbox_inches="tight"))]
    if pdf:
        out.append(atomic_write(path.with_suffix(".pdf"),
                                lambda p: fig.savefig(p, format="pdf", bbox_inches="tight")))
    plt.close(fig)
    return out
