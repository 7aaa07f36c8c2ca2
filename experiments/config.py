"""Experiment configs (TOML): load, validate every key before any work, name file and line.

A config has top-level keys (:data:`TOP`), a ``[defaults]`` table merged into every
``[[items]]`` entry, and a ``[figures]`` table. Which item keys are allowed depends on ``kind``
(the experiment runner: ``erf``, ``table`` or ``depth``); each runner declares its own
:class:`Key` table, so an unknown key, a wrong type or a missing required key is one clear
error: ``configs/x.toml:12: items[0].sampels: unknown key (did you mean 'samples'?)``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytic.errors import SpecError
from analytic.spec import parse_spec_text


class ConfigError(SpecError):
    """A config file is malformed: the message names the file, line and key."""


@dataclass(frozen=True)
class Key:
    """One allowed key: its type(s), default (None = required unless ``optional``), doc."""

    types: tuple[type, ...]
    default: Any = None
    doc: str = ""
    required: bool = False
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None


TOP = {
    "name": Key((str,), None, "experiment name (the default output directory runs/<name>)", True),
    "description": Key((str,), "", "one line shown in summary.md"),
    "kind": Key((str,), None, "runner: erf | table | depth", True, ("erf", "table", "depth")),
    "seed": Key((int,), 0, "base random seed", low=0, high=2**32 - 1),
    "device": Key((str,), "cpu", "cpu | cuda (overridden by --device)", choices=("cpu", "cuda")),
}

FIGURES = {
    "heatmap": Key((bool,), True, "ERF heatmap with the analytic region box and centre"),
    "log_heatmap": Key((bool,), True, "the same on a log scale"),
    "profile": Key((bool,), True, "1-D centre profiles with the Gaussian fit"),
    "depth": Key((bool,), True, "r and ERF size per end-point along the network"),
    "grid": Key((bool,), True, "side-by-side heatmaps of all items"),
    "pdf": Key((bool,), False, "also write PDF next to each PNG"),
}


@dataclass
class Config:
    """A validated config: top-level values, the items (defaults merged) and figure flags."""

    path: Path
    text: str
    top: dict[str, Any]
    items: list[dict[str, Any]]
    figures: dict[str, bool]
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific top-level tables

    @property
    def name(self) -> str:
        return self.top["name"]

    @property
    def kind(self) -> str:
        return self.top["kind"]


def _line_of(text: str, key: str, occurrence: int = 0) -> int | None:
    """Best-effort line number of ``key =`` (the n-th occurrence) in TOML text."""
    pattern = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.M)
    hits = [text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)]
    if not hits:
        return None
    return hits[min(occurrence, len(hits) - 1)]


def _line_of_table(text: str, name: str) -> int | None:
    m = re.search(rf"^[ \t]*\[\[?{re.escape(name)}\]\]?", text, re.M)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _check_value(where: str, key: str, value: Any, spec: Key) -> Any:
    ok_types = spec.types
    if isinstance(value, bool) and bool not in ok_types:
        ok = False
    elif float in ok_types and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    else:
        ok = isinstance(value, ok_types)
    if not ok:
        names = " or ".join(t.__name__ for t in ok_types)
        raise ConfigError(f"{where}{key}: expected {names}, got {type(value).__name__} "
                          f"{value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{where}{key}: must be one of {list(spec.choices)}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.low is not None and value < spec.low:
            raise ConfigError(f"{where}{key}: must be >= {spec.low}, got {value}")
        if spec.high is not None and value > spec.high:
            raise ConfigError(f"{where}{key}: must be <= {spec.high}, got {value}")
    return value


def validate_table(table: Any, schema: dict[str, Key], path: Path, text: str, prefix: str,
                   occurrence: int = 0, fill: bool = True) -> dict[str, Any]:
    """Check a table against a schema: unknown keys, types, required keys; fill defaults."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {prefix.rstrip('.') or 'config'} must be a table")
    out = {}
    for key, value in table.items():
        line = _line_of(text, key, occurrence)
        where = f"{path}:{line}: {prefix}" if line else f"{path}: {prefix}"
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else \
                f"; allowed: {', '.join(sorted(schema))}"
            raise ConfigError(f"{where}{key}: unknown key{hint}")
        out[key] = _check_value(where, key, value, schema[key])
    for key, spec in schema.items():
        if key not in out and fill:
            if spec.required:
                raise ConfigError(f"{path}: {prefix}{key}: missing required key ({spec.doc})")
            out[key] = spec.default
    return out


def load_config(path: str | Path, item_schema: dict[str, Key] | None = None,
                extra_tables: dict[str, dict[str, Key]] | None = None) -> Config:
    """Read and validate a config. ``item_schema`` / ``extra_tables`` come from the runner of
    the config's ``kind`` (looked up by the caller after reading ``kind``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        raw = parse_spec_text(text, "toml", str(path), "an experiment config")
    except SpecError as e:
        raise ConfigError(str(e)) from None
    extra_tables = extra_tables or {}
    sections = {"defaults", "items", "figures", *extra_tables}
    if item_schema is None:  # first pass: only the top-level values, to learn the kind
        top_raw = {k: v for k, v in raw.items() if not isinstance(v, (dict, list))}
        return Config(path, text, validate_table(top_raw, TOP, path, text, ""), [], {})
    for key, value in raw.items():
        if isinstance(value, (dict, list)) and key not in sections:
            line = _line_of(text, key) or _line_of_table(text, key)
            raise ConfigError(f"{path}:{line}: [{key}]: unknown table for kind "
                              f"{raw.get('kind')!r}; allowed: {', '.join(sorted(sections))}")
    top = validate_table({k: v for k, v in raw.items() if k not in sections}, TOP, path, text,
                         "")
    defaults = validate_table(raw.get("defaults", {}), item_schema, path, text, "defaults.",
                              fill=False)
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        raise ConfigError(f"{path}: needs at least one [[items]] entry")
    items = []
    for i, item in enumerate(items_raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: items[{i}] must be a table")
        merged = {**defaults, **item}
        items.append(validate_table(merged, item_schema, path, text, f"items[{i}].", i))
    figures = validate_table(raw.get("figures", {}), FIGURES, path, text, "figures.")
    extra = {name: validate_table(raw.get(name, {}), schema, path, text, f"{name}.")
             for name, schema in extra_tables.items()}
    return Config(path, text, top, items, figures, extra)
