"""Hostile input: every case is refused with one clear `error:` line (what, where, what next),
exit code 1, nothing on stdout and no output file. docs/errors.md lists these messages."""

import json

import pytest

from erf.cli import main

torch = pytest.importorskip("torch")


def erf(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, match, *argv):
    import re
    code, out, err = erf(capsys, *argv)
    assert code == 1 and out == "", (code, out)
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert re.search(match, err, re.S), err
    return err


@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setattr("analytic.limits.MEMORY_LIMIT", 1 << 30)


# ---- models -----------------------------------------------------------------------------------
def test_unknown_op_lists_it_with_its_source_line(capsys):
    refused(capsys, r"without a receptive-field rule.*fft.*hostile_models\.py:\d+.*"
            r"Pass rules=\{op: rule\}", "analyze", "hostile_models:spectral",
            "--input-shape", "1,3,8,8")


def test_data_dependent_control_flow(capsys):
    refused(capsys, r"torch\.export failed for Branchy at input shapes \[\[1, 3, 8, 8\]\] at "
            r"\S*hostile_models\.py:\d+ \(if x\.sum\(\) > 0:\).*What next: the forward branches "
            r"on tensor values", "analyze", "hostile_models:branchy", "--input-shape", "1,3,8,8")


def test_export_noise_is_held_back(capsys):
    err = refused(capsys, "torch.export failed", "analyze", "hostile_models:branchy",
                  "--input-shape", "1,3,8,8")
    assert len(err.strip().splitlines()) == 1  # no graph dumps or log lines from torch


def test_no_spatial_input(capsys):
    refused(capsys, r"the model input 'input' of shape \[1, 8\] has no spatial dims .* pass an "
            r"NC\* shape",
            "analyze", "hostile_models:linear", "--input-shape", "1,8")


def test_input_shape_that_does_not_fit(capsys):
    refused(capsys, r"torch\.export failed for Conv2d at input shapes \[\[1, 4, 8, 8\]\].*"
            r"to have 3 channels, but got 4.*What next: check that the model runs on an input "
            r"of this shape", "analyze", "hostile_models:conv", "--input-shape", "1,4,8,8")


def test_input_smaller_than_the_kernel(capsys):
    refused(capsys, r"Kernel size can't be greater than actual input size", "analyze",
            "hostile_models:conv", "--input-shape", "1,3,2,2")


def test_empty_feature_map(capsys):
    refused(capsys, r"end-point 'slice_1' \(op slice, \S*hostile_models\.py:\d+\) has an empty "
            r"spatial shape \[0, 8\] at input 8x8.*analyze at a larger input size", "analyze",
            "hostile_models:crop", "--input-shape", "1,3,8,8")


def test_huge_input_refused_before_allocating(capsys, small_memory):
    refused(capsys, r"an example input of shape \[1, 3, 100000, 100000\] \(torch\.float32\) would "
            r"need about 111\.8 GiB of memory, more than the limit of 1\.0 GiB.*Analyze at a "
            r"smaller input size", "analyze", "hostile_models:conv",
            "--input-shape", "1,3,100000,100000")


def test_bad_input_shapes(capsys):
    refused(capsys, r"--input-shape '1,3,0,5': sizes must be positive", "analyze",
            "hostile_models:conv", "--input-shape", "1,3,0,5")
    refused(capsys, r"give --input-shape", "analyze", "hostile_models:conv")


def test_unknown_names(capsys):
    refused(capsys, r"'resnet_v1_5' is not a spec file.*Did you mean resnet_v1_50", "analyze",
            "resnet_v1_5")
    refused(capsys, r"module 'hostile_models' has no attribute 'nothing'", "analyze",
            "hostile_models:nothing")
    refused(capsys, r"cannot import module 'no_such_pkg_xyz'", "analyze", "no_such_pkg_xyz:net")


# ---- spec files -------------------------------------------------------------------------------
def write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_spec_files(capsys, tmp_path):
    refused(capsys, r"spec file \S*missing\.json does not exist", "analyze",
            tmp_path / "missing.json")
    refused(capsys, r"malformed JSON at line 1", "analyze", write(tmp_path, "a.json", "{"))
    refused(capsys, r"nested too deeply to be a layer spec|malformed JSON", "analyze",
            write(tmp_path, "b.json", "[" * 100_000 + "]" * 100_000))
    refused(capsys, r"node 'c', field 'kernel': entries must be integers, got '3'", "analyze",
            write(tmp_path, "c.json", {"input": [8], "nodes": [
                {"name": "c", "op": "conv", "inputs": ["input"], "kernel": "3"}]}))
    refused(capsys, r"node 'c', field 'stride': is too large", "analyze",
            write(tmp_path, "d.json", {"input": [8], "nodes": [
                {"name": "c", "op": "conv", "inputs": ["input"], "stride": 10**30}]}))
    refused(capsys, r"'input' sizes must be between 1 and", "analyze",
            write(tmp_path, "e.json", {"input": [10**30], "nodes": [
                {"name": "c", "op": "conv", "inputs": ["input"]}]}))


def test_huge_spec_regions_refused(capsys, tmp_path, small_memory):
    spec = write(tmp_path, "big.json", {"input": [2**30, 2**30], "nodes": [
        {"name": "c", "op": "conv", "inputs": ["input"], "kernel": 3}]})
    code, out, _ = erf(capsys, "analyze", spec)  # r, S, P need no memory
    assert code == 0 and "r=3 S=1 P=0" in out
    refused(capsys, r"exact regions at input size 1073741824x1073741824 would need about "
            r".* GiB of memory.*leave out --regions", "analyze", spec, "--regions")


def test_huge_read_map_refused(capsys, tmp_path, small_memory):
    refused(capsys, r"the read map of nearest upsampling to 2000000000 positions would need",
            "analyze", write(tmp_path, "up.json", {"input": [10**9], "nodes": [
                {"name": "u", "op": "upsample", "inputs": ["input"], "size": 2 * 10**9}]}))


# ---- experiment configs -----------------------------------------------------------------------
CONFIG = 'name = "x"\nkind = "table"\n[[items]]\nmodel = "{model}"\n{extra}'


@pytest.mark.parametrize("model, extra, match", [
    ("resnet_v1_5", "", r"cfg\.toml:4: items\[0\]\.model: 'resnet_v1_5' is not a spec file.*"
     r"Did you mean resnet_v1_50"),
    ("nope/missing.json", "", r"cfg\.toml:4: items\[0\]\.model: spec file nope/missing\.json "
     r"does not exist"),
    ("resnet_v1_50", "input_size = 100000000000000000000",
     r"cfg\.toml:5: items\[0\]\.input_size: must be <= 100000"),
    ("resnet_v1_50", 'input_size = "224"', r"cfg\.toml:5: items\[0\]\.input_size: expected int, "
     r"got str '224'"),
    ("resnet_v1_50", "sampels = 3", r"cfg\.toml:5: items\[0\]\.sampels: unknown key"),
    ("resnet_v1_50", "x = " + "[" * 50_000 + "]" * 50_000,
     r"cfg\.toml: nested too deeply to be an experiment config|malformed TOML"),
])
def test_bad_configs_leave_no_output(capsys, tmp_path, model, extra, match):
    cfg = write(tmp_path, "cfg.toml", CONFIG.format(model=model, extra=extra))
    out = tmp_path / "run"
    refused(capsys, match, "run", cfg, "--out", out, "--quiet")
    assert not out.exists()


def test_missing_config(capsys, tmp_path):
    refused(capsys, r"config file \S*nope\.toml does not exist", "run", tmp_path / "nope.toml")


def test_failing_item_leaves_no_output(capsys, tmp_path):
    spec = write(tmp_path, "k5.json", {"input": [8], "nodes": [
        {"name": "c", "op": "conv", "inputs": ["input"], "kernel": 5}]})
    cfg = write(tmp_path, "cfg.toml", CONFIG.format(model=spec, extra="input_size = 2\n"))
    out = tmp_path / "run"
    refused(capsys, r"node 'c', field 'kernel': window larger than its padded input \[2\]", "run",
            cfg, "--out", out, "--quiet")
    assert not out.exists()


def test_nothing_unpickles():
    """Loading a file never runs code: no pickle, no torch.load without weights_only=True, no
    np.load with allow_pickle=True anywhere in the packages."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    bad = []
    for pkg in ("analytic", "erf", "experiments"):
        for path in (root / pkg).rglob("*.py"):
            text = path.read_text()
            for pattern in (r"\bpickle\.loads?\(", r"\bdill\.", r"\bjoblib\.load",
                            r"allow_pickle\s*=\s*True", r"torch\.load\((?![^)]*weights_only=True)"):
                bad += [f"{path.relative_to(root)}: {m.group(0)}"
                        for m in re.finditer(pattern, text)]
    assert not bad, bad


def test_a_crashing_user_rule_names_itself_and_the_node():
    from analytic import CaptureError, analyze

    def boom(call):
        return 1 / 0
    with pytest.raises(CaptureError, match=r"the rule 'boom' failed on node relu \(aten\.relu"
                       r"\.default.*\): ZeroDivisionError: division by zero"):
        analyze(torch.nn.ReLU(), (1, 2, 5, 5), rules={torch.ops.aten.relu.default: boom})
