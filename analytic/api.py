"""``analyze``: one entry point for graphs, spec files, PyTorch modules and JAX callables."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .analysis import Analysis, analyze_graph
from .errors import SpecError
from .graph import Graph

FRAMEWORKS = ("spec", "torch", "jax")


def detect_framework(target: Any) -> str:
    """'spec', 'torch' or 'jax' from the target's type, without importing a framework."""
    if isinstance(target, (str, Path, dict)):
        return "spec"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(target, torch.nn.Module):
        return "torch"
    if callable(target) or isinstance(target, tuple):
        return "jax"
    raise SpecError(f"cannot analyze a {type(target).__name__}: pass a Graph, a spec (file "
                    "path or dict), a torch.nn.Module or a JAX callable")


def to_graph(target: Any, input_shape: Sequence[int] | None = None, *,
             example_inputs: Any = None, rules: dict | None = None,
             framework: str | None = None, **options: Any) -> Graph:
    """The IR of a target (see :func:`analyze` for the arguments)."""
    if isinstance(target, Graph):
        return target
    framework = framework or detect_framework(target)
    if framework == "spec":
        from .spec import load_spec
        return load_spec(target, input_shape=input_shape)
    if framework not in FRAMEWORKS:
        raise SpecError(f"unknown framework {framework!r}; use one of {', '.join(FRAMEWORKS)}")
    frontend = importlib.import_module(f"analytic.frontends.{framework}")
    return frontend.capture(target, input_shape=input_shape, example_inputs=example_inputs,
                            rules=rules, **options)


def analyze(target: Any, input_shape: Sequence[int] | None = None, *,
            example_inputs: Any = None, output: str | None = None, rules: dict | None = None,
            strict: bool = False, framework: str | None = None, **options: Any) -> Analysis:
    """Receptive fields of every node of ``target`` at a concrete input size.

    ``target``: a :class:`Graph`, a spec file (JSON/TOML), a ``torch.nn.Module`` or a JAX
    callable. ``input_shape``: the full input shape for frameworks (e.g. ``(1, 3, 224, 224)``),
    the spatial shape for spec files (overrides the file's). ``output``: the end-point, by node
    name or user path (module path); the model's output by default. ``rules``: extra op rules
    ``{op: rule}`` for ops the frontend does not know. ``strict``: raise on misalignment.
    Frontend options pass through, e.g. for PyTorch ``capture="auto"|"fast"|"export"`` (one
    forward on meta tensors, falling back to ``torch.export`` where that is not exact; see
    :func:`analytic.frontends.torch.trace`) and ``spatial_dims``.
    """
    graph = to_graph(target, input_shape, example_inputs=example_inputs, rules=rules,
                     framework=framework, **options)
    return analyze_graph(graph, output, strict)


def size_dependence(target: Any, shapes: Sequence[Sequence[int]], output: str | None = None,
                    **kwargs: Any) -> dict:
    """Analyze at several input shapes; report whether r, S or P change with the size.

    TF 'SAME' padding makes P (and alignment) depend on the input size (DESIGN.md §5).
    """
    rows = []
    for shape in shapes:
        a = analyze(target, shape, output=output, **kwargs)
        rows.append({"input_shape": list(a.input_shape), "size": list(a.size),
                     "stride": list(a.stride), "padding": list(a.padding),
                     "aligned": a.aligned})
    changes = {k: len({tuple(r[k]) for r in rows}) > 1 for k in ("size", "stride", "padding")}
    return {"results": rows, "depends_on_size": any(changes.values()), "changes": changes}
