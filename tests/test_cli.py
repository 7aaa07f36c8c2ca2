"""The `erf` command line: output formats, golden files, one-line errors, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from erf.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "analytic" / "specs"
GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("ERF_REGEN_GOLDEN") == "1"  # ERF_REGEN_GOLDEN=1 pytest; review the diff


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_golden(name, text):
    path = GOLDEN / name
    if REGEN:
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; regenerate with ERF_REGEN_GOLDEN=1"


def test_analyze_table_golden(capsys):
    code, out, err = run_cli(capsys, "analyze", SPECS / "distill_misaligned.json", "--regions")
    assert code == 0 and err == ""
    check_golden("distill_misaligned.txt", out)


def test_analyze_json_schema_and_values(capsys):
    code, out, _ = run_cli(capsys, "analyze", SPECS / "distill_d1.json", "--json", "--regions")
    d = json.loads(out)
    assert code == 0 and d["schema_version"] == 1
    assert {"input_shape", "output", "size", "stride", "padding", "aligned", "misalignments",
            "nodes", "regions"} <= set(d)
    assert (d["size"], d["stride"], d["padding"]) == ([7], [4], [3])  # the paper's example
    assert d["regions"] == [[[0, 3], [1, 7], [5, 11], [9, 12]]]
    assert [n["name"] for n in d["nodes"]] == ["input", "conv1", "relu", "conv2", "pool"]
    check_golden("distill_d1.json", json.dumps(d, indent=1) + "\n")


def test_global_output_is_null_in_json(capsys, tmp_path):
    spec = tmp_path / "g.json"
    spec.write_text(json.dumps({"input": [6, 5], "nodes": [
        {"name": "c", "op": "conv", "inputs": ["input"], "kernel": 3},
        {"name": "g", "op": "global", "inputs": ["c"]}]}))
    code, out, _ = run_cli(capsys, "analyze", spec, "--json", "--regions")
    d = json.loads(out)
    assert d["size"] == [None, None] and d["stride"] == [None, None]
    assert d["regions"] == [[[0, 5]], [[0, 4]]]  # one position that reads everything


def test_output_and_input_shape_override(capsys):
    code, out, _ = run_cli(capsys, "analyze", SPECS / "vgg_16.json", "--output", "pool3",
                           "--input-shape", "100,100", "--json")
    d = json.loads(out)
    # pool3: 3 blocks of convs: r = 1 + 2*(1+1) + 1*(1) ... by hand: 44, S = 8, P = 1+2+4*... =
    # conv pads: 2 convs at S=1, 2 at S=2, 3 at S=4 -> P = 2 + 4 + 12 = 18
    assert d["output"] == "pool3" and d["input_shape"] == [100, 100]
    assert d["size"] == [44, 44] and d["stride"] == [8, 8] and d["padding"] == [18, 18]


@pytest.mark.parametrize("argv, match", [
    (["analyze", "missing.json"], "error: spec file missing.json does not exist"),
    (["analyze", "no_such_model"], "error: 'no_such_model' is not a spec file"),
    (["analyze", "no_such_module_xyz:net"], "error: cannot import module 'no_such_module_xyz'"),
    (["analyze", str(SPECS / "vgg_16.json"), "--output", "pool9"],
     "error: no node or module path 'pool9'"),
    (["analyze", str(SPECS / "vgg_16.json"), "--input-shape", "a,b"],
     "error: --input-shape 'a,b': expected integers"),
])
def test_errors_are_one_line_and_exit_1(capsys, argv, match):
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and err.startswith(match) and "Traceback" not in err


def test_ops_lists_spec_ops(capsys):
    code, out, _ = run_cli(capsys, "ops")
    names = {line.split()[0] for line in out.splitlines()}
    assert {"conv", "pool", "pad", "pointwise", "add", "concat", "conv_transpose", "upsample",
            "pixel_shuffle", "slice", "global"} <= names


def test_console_script_runs_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-m", "erf.cli", "analyze",
                           str(SPECS / "distill_aligned.json")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0
    assert "output add: r=3 S=4 P=1 at input 8; aligned" in proc.stdout
