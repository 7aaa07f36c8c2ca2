"""The core knows no framework: importing and using it loads neither torch nor jax."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = [p for p in (ROOT / "analytic").glob("*.py")]


def test_core_modules_import_no_framework():
    for path in CORE:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("torch", "jax", "jaxlib", "flax"), (path, name)


def test_analyzing_a_spec_loads_no_framework():
    code = ("import sys, analytic; analytic.analyze('analytic/specs/vgg_16.json');"
            "import erf.cli;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch','jax')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert out.strip() == "[]"
