"""`erf measure` and `erf check`: files written and decodable, exit codes, one-line errors."""

import json

import numpy as np
import pytest

from erf.cli import main

pytest.importorskip("torch")
pytest.importorskip("analytic.frontends.torch")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_measure_writes_json_npy_png(capsys, tmp_path):
    out = tmp_path / "m"
    code, text, err = run_cli(capsys, "measure", "erf_cases:ResidualUp", "--input-shape",
                              "1,2,12,12", "--units", "grid:2", "--samples", "2", "--out", out)
    assert code == 0, err
    assert "ERF at head" in text and f"wrote {out / 'results.json'}" in text
    d = json.loads((out / "results.json").read_text())
    assert d["units"] == [[4, 4], [4, 7], [7, 4], [7, 7]]  # grid:2 on 12: round(11/3, 22/3)
    assert d["settings"]["model"] == "erf_cases:ResidualUp" and d["settings"]["samples"] == 2
    assert d["endpoint"]["path"] == "head" and len(d["analytic"]["regions"]) == 4
    assert set(d["versions"]) >= {"torch", "numpy"} and "luo" in d["metrics"]
    m = np.load(out / "erf.npy")
    assert m.shape == (12, 12) and np.all(np.isfinite(m)) and m.max() > 0
    import matplotlib.image
    png = matplotlib.image.imread(out / "erf.png")
    assert png.ndim == 3 and png.shape[0] > 100


def test_measure_explicit_units_and_variants(capsys, tmp_path):
    code, text, err = run_cli(capsys, "measure", "erf_cases:ResidualUp", "--input-shape",
                              "1,2,12,12", "--units", "0,0;5,5", "--variants", "signed",
                              "--pack", "--out", tmp_path)
    assert code == 0, err
    d = json.loads((tmp_path / "results.json").read_text())
    assert d["units"] == [[0, 0], [5, 5]] and d["settings"]["variants"] == ["abs", "signed"]


def test_check_exit_codes(capsys, monkeypatch):
    code, text, _ = run_cli(capsys, "check", "erf_cases:ResidualUp", "--input-shape",
                            "1,2,12,12", "--units", "all")
    assert code == 0 and "OK, every gradient inside its exact region" in text
    from analytic.analysis import Analysis
    from analytic.regions import Boxes
    true = Analysis.regions
    monkeypatch.setattr(Analysis, "regions",
                        lambda self, name=None: Boxes(true(self, name).lo + 1,
                                                      true(self, name).hi))
    code, text, _ = run_cli(capsys, "check", "erf_cases:ResidualUp", "--input-shape",
                            "1,2,12,12", "--json")
    assert code == 1 and json.loads(text)["ok"] is False


@pytest.mark.parametrize("argv,message", [
    (["measure", "analytic/specs/vgg_16.json", "--out", "x"], "describes geometry only"),
    (["check", "erf_cases:ResidualUp"], "give --input-shape"),
    (["check", "erf_cases:ResidualUp", "--input-shape", "1,2,12,12", "--units", "a;b"],
     "--units 'a;b'"),
], ids=["spec", "noshape", "units"])
def test_cli_errors_are_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and out == "" and err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1
