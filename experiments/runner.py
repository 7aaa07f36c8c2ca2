"""``erf run CONFIG``: validate, run every item (resumable), then tables, figures, summary.

Output directory (default ``runs/<name>``): ``config.toml`` (a copy), ``items/<id>.json`` (one
per finished item, written atomically; a rerun skips items whose file exists with the same
settings hash, ``--force`` recomputes), ``results.json``, CSV tables, PNG (and PDF) figures and
``summary.md`` linking them. The runner of each ``kind`` lives in ``experiments.kinds``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import io
from .config import Config, ConfigError, load_config


@dataclass
class RunContext:
    """What an item runner needs besides its item: where to write, the device, the seed."""

    out: Path
    config: Config
    device: str
    seed: int

    def item_dir(self, item_id: str) -> Path:
        path = self.out / "items" / item_id
        path.mkdir(parents=True, exist_ok=True)
        return path


def kind_module(kind: str) -> ModuleType:
    return importlib.import_module(f"experiments.kinds.{kind}")


def read_config(path: str | Path) -> tuple[Config, ModuleType]:
    """Validate the whole config (top level first, then the items against its kind)."""
    top = load_config(path)
    module = kind_module(top.kind)
    config = load_config(path, module.ITEM_SCHEMA, getattr(module, "EXTRA_TABLES", None))
    from analytic.errors import SpecError
    from erf.targets import check_target
    for i, item in enumerate(config.items):
        if "model" in item:
            try:
                check_target(item["model"])
            except SpecError as e:
                line = _model_line(config.text, i)
                raise ConfigError(f"{config.path}:{line}: items[{i}].model: {e}" if line else
                                  f"{config.path}: items[{i}].model: {e}") from None
    return config, module


def _model_line(text: str, index: int) -> int | None:
    """Line of ``model =`` in the index-th [[items]] table (or in [defaults])."""
    starts = [m.start() for m in re.finditer(r"^[ \t]*\[\[items\]\]", text, re.M)]
    if index >= len(starts):
        return None
    end = starts[index + 1] if index + 1 < len(starts) else len(text)
    found = re.search(r"^[ \t]*model[ \t]*=", text[starts[index]:end], re.M)
    if found is None:
        found = re.search(r"^[ \t]*model[ \t]*=", text, re.M)
        return text.count("\n", 0, found.start()) + 1 if found else None
    return text.count("\n", 0, starts[index] + found.start()) + 1


def item_id(index: int, item: dict) -> str:
    label = str(item.get("label") or item.get("model") or "item")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:40] or "item"
    return f"{index:03d}-{slug}"


def settings_hash(config: Config, item: dict, device: str) -> str:
    payload = json.dumps({"item": item, "seed": config.top["seed"], "device": device,
                          "kind": config.kind}, sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def _progress(i: int, n: int, label: str, status: str, t0: float) -> None:
    """A one-line bar on a terminal; one plain line per finished item in logs."""
    width = 24
    done = int(width * i / n)
    bar = "#" * done + "." * (width - done)
    text = f"[{bar}] {i}/{n} {status:8s} {label[:40]:40s} {time.time() - t0:6.1f}s"
    if sys.stderr.isatty():
        print("\r" + text, end="" if i < n else "\n", file=sys.stderr, flush=True)
    elif status != "running":
        print(text, file=sys.stderr, flush=True)


def run(path: str | Path, out: str | Path | None = None, device: str | None = None,
        force: bool = False, progress: bool = True) -> Path:
    """Run a config; returns the output directory."""
    config, module = read_config(path)
    device = device or config.top["device"]
    out_dir = Path(out) if out else Path("runs") / config.name
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(config, module, out_dir, device, force, progress)
    except BaseException:
        # a run that fails before finishing any item leaves no directory it created behind
        if created and not any((out_dir / "items").glob("*.json")):
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _run(config: Config, module: ModuleType, out_dir: Path, device: str, force: bool,
         progress: bool) -> Path:
    io.write_text(out_dir / "config.toml", config.text)
    ctx = RunContext(out_dir, config, device, config.top["seed"])
    results: list[dict[str, Any]] = []
    t0 = time.time()
    n = len(config.items)
    for i, item in enumerate(config.items):
        iid = item_id(i, item)
        digest = settings_hash(config, item, device)
        path_i = out_dir / "items" / f"{iid}.json"
        cached = _load_finished(path_i, digest) if not force else None
        if cached is not None:
            results.append(cached)
            if progress:
                _progress(i + 1, n, iid, "cached", t0)
            continue
        if progress:
            _progress(i, n, iid, "running", t0)
        started = time.time()
        result = module.run_item(item, ctx, iid)
        result = {"id": iid, "settings_hash": digest, "item": item,
                  "seconds": round(time.time() - started, 3), **result}
        io.write_json(path_i, result)
        results.append(result)
        if progress:
            _progress(i + 1, n, iid, "done", t0)
    files = module.finish(config, results, ctx)
    io.write_json(out_dir / "results.json", {"schema_version": 1, "name": config.name,
                                             "kind": config.kind, "items": results})
    io.write_text(out_dir / "summary.md", _summary(config, results, files, out_dir, module))
    return out_dir


def _load_finished(path: Path, digest: str) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # unreadable: recompute (atomic writes make this rare)
    return data if data.get("settings_hash") == digest else None


def _summary(config: Config, results: list[dict], files: list[Path], out: Path,
             module: ModuleType) -> str:
    lines = [f"# {config.name}", "", config.top["description"], "",
             f"Config: [config.toml](config.toml) · kind `{config.kind}` · "
             f"{len(results)} items · results: [results.json](results.json)", ""]
    lines += module.summary(config, results)
    if files:
        lines += ["", "## Files", ""]
        for f in files:
            rel = f.relative_to(out)
            lines.append(f"- [{rel}]({rel})" if f.suffix != ".png" else f"![{rel}]({rel})")
    return "\n".join(lines) + "\n"


__all__ = ["ConfigError", "RunContext", "read_config", "run"]
