"""Helpers shared by the experiment runners."""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path

from analytic import Analysis, analyze
from erf.targets import load_target

from ..io import write_text


def analyze_target(model: str, framework: str | None, input_size: int | None,
                   endpoint: str | None) -> tuple[Analysis, str]:
    """Analyse a zoo name / module:attr / spec at a square input size; returns the end-point."""
    target = load_target(model, framework)
    shape = target.input_shape((input_size,)) if input_size else None
    if target.framework == "spec" and input_size:
        from analytic.spec import load_spec
        shape = (input_size,) * len(load_spec(target.obj).input_shape)
    if endpoint is None:
        from experiments.models.zoo import ZOO, endpoint_of
        endpoint = endpoint_of(model) if model in ZOO else None
    options = {"layout": target.layout} if target.layout and target.framework == "jax" else {}
    result = analyze(target.obj, shape, output=endpoint, framework=target.framework, **options)
    return result, endpoint or result.node().path or result.output


def table_csv(path: Path, rows: list[dict]) -> Path:
    """Write rows (dicts with the same keys) as CSV, atomically."""
    buf = _io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return write_text(path, buf.getvalue())
