"""Resolve what a user names on the command line or in a config into something to analyse.

A target is a spec file (``.json``/``.toml``), ``package.module:attr`` (an ``nn.Module``
instance, class or zero-argument factory; for JAX a function, a ``(fn, params)`` pair or a
factory returning one), or a registered zoo name. Loading ``module:attr`` imports and runs
that module's code, by design: only name modules you trust.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytic.errors import SpecError


@dataclass(frozen=True)
class Target:
    """A loaded target: the object, its framework and how to build a full input shape."""

    obj: Any
    framework: str  # 'spec' | 'torch' | 'jax'
    name: str
    default_shape: tuple[int, ...] | None = None  # full input shape when the user gives none
    layout: str | None = None  # e.g. 'NCHW' (torch) or 'NHWC' (JAX zoo models)

    def input_shape(self, given: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """The full input shape from a user's ``--input-shape``: a spatial size alone (224 or
        224,224) is expanded with the target's default batch and channels."""
        if given is None or self.framework == "spec":
            return given if given is not None else self.default_shape
        if self.default_shape is not None:
            spatial = _spatial_positions(self.layout or "NCHW", len(self.default_shape))
            if len(given) in (1, len(spatial)) and len(given) < len(self.default_shape):
                sizes = list(given) * len(spatial) if len(given) == 1 else list(given)
                full = list(self.default_shape)
                for pos, n in zip(spatial, sizes):
                    full[pos] = n
                return tuple(full)
        return given


def _spatial_positions(layout: str, ndim: int) -> list[int]:
    return [i for i, c in enumerate(layout[:ndim]) if c not in "NC"]


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """'1,3,224,224' or '224x224' -> a tuple of positive ints; clear error otherwise."""
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").replace(" ", "").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise SpecError(f"--input-shape {text!r}: expected integers like 1,3,224,224") from None
    if not shape or any(n < 1 for n in shape):
        raise SpecError(f"--input-shape {text!r}: sizes must be positive integers")
    return shape


def load_target(text: str, framework: str | None = None) -> Target:
    """A :class:`Target` from a spec path, ``module:attr`` or a zoo name."""
    path = Path(text)
    if path.suffix.lower() in (".json", ".toml"):
        if not path.is_file():
            raise SpecError(f"spec file {text} does not exist")
        return Target(path, "spec", path.stem)
    if ":" in text:
        return _load_attr(text, framework)
    from experiments.models import zoo
    entry = zoo.ZOO.get(text)
    if entry is None:
        raise _unknown(text, list(zoo.ZOO))
    return entry.load(framework)


def check_target(text: str) -> None:
    """Raise the error :func:`load_target` would for a name that cannot resolve (missing spec
    file, unknown zoo name, module or attribute), without building the model. A
    ``module:attr`` target is imported (that runs its code), its factory not called."""
    path = Path(text)
    if path.suffix.lower() in (".json", ".toml"):
        if not path.is_file():
            raise SpecError(f"spec file {text} does not exist")
        return
    if ":" in text:
        _resolve_attr(text)
        return
    from experiments.models import zoo
    if text not in zoo.ZOO:
        raise _unknown(text, list(zoo.ZOO))


def _unknown(text: str, names: list[str]) -> SpecError:
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return SpecError(f"{text!r} is not a spec file, a module:attr path or a zoo model.{hint}"
                     " `erf zoo` lists the zoo.")


def _import(module_name: str, text: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise SpecError(f"cannot import module {module_name!r} of target {text!r}: {e}. "
                        "Is it on PYTHONPATH (run from the project directory)?") from None


def _resolve_attr(text: str) -> Any:
    """The object ``package.module:attr`` names (importing the module runs its code)."""
    module_name, _, attr = text.partition(":")
    obj: Any = _import(module_name, text)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _load_attr(text: str, framework: str | None) -> Target:
    obj = _resolve_attr(text)
    if inspect.isclass(obj) or (callable(obj) and not _is_module(obj) and _no_arguments(obj)):
        obj = _call_factory(obj, text)
    fw = framework or ("torch" if _is_module(obj) else "jax")
    if fw == "torch" and not _is_module(obj):
        raise SpecError(f"{text} is not an nn.Module, a Module class or a factory of one")
    return Target(obj, fw, text)


def _is_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _no_arguments(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params)


def _call_factory(obj: Any, text: str) -> Any:
    try:
        return obj()
    except TypeError as e:
        raise SpecError(f"{text}: could not call it with no arguments ({e}); point at a "
                        "zero-argument factory or a model instance") from None
