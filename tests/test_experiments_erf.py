"""The erf and depth experiment kinds end to end on tiny configs (files, figures, slopes)."""

import json

import pytest

pytest.importorskip("torch")

from experiments import runner  # noqa: E402

DEPTH = """name = "luo_small"
kind = "depth"

[[items]]
label = "uniform"
weights = "uniform"
depths = [4, 8, 16, 32]
margin = 4
"""

ERF = """name = "erf_small"
kind = "erf"

[[items]]
model = "small_resnet"
framework = "torch"
input_size = 40
endpoints = ["layer1", "layer2"]
samples = 2
check_units = "grid:2"
"""


def test_luo_uniform_slope_is_one_half(tmp_path):
    cfg = tmp_path / "luo.toml"
    cfg.write_text(DEPTH)
    out = runner.run(cfg, out=tmp_path / "out", progress=False)
    (item,) = json.loads((out / "results.json").read_text())["items"]
    # Luo et al. 2016: ERF size ~ sqrt(n) for a uniform stride-1 stack, so ERF/RF ~ 1/sqrt(n);
    # stated tolerance 0.1 on the fitted log-log slopes over n = 4..32
    assert item["slope"] == pytest.approx(0.5, abs=0.1)
    assert item["ratio_slope"] == pytest.approx(-0.5, abs=0.1)
    assert [row["r"] for row in item["rows"]] == [9, 17, 33, 65]  # 1 + 2n (eq. 2 by hand)
    assert (out / "erf_vs_depth.png").read_bytes()[:4] == b"\x89PNG"
    assert "uniform" in (out / "slopes.csv").read_text()


def test_erf_kind_writes_tables_figures_and_containment(tmp_path):
    cfg = tmp_path / "erf.toml"
    cfg.write_text(ERF)
    out = runner.run(cfg, out=tmp_path / "out", progress=False)
    (item,) = json.loads((out / "results.json").read_text())["items"]
    rows = {r["endpoint"]: r for r in item["endpoints"]}
    # the quickstart net by hand: stem 3x3/2 (r 3, S 2, P 1), two basic blocks of 3x3 convs
    # at stride 2 -> layer1 r = 3 + 8*2 = 19, P = 1 + 4*2 = 9; layer2 r = 47, S = 4, P = 23
    assert rows["layer1"]["size"] == [19, 19] and rows["layer1"]["padding"] == [9, 9]
    assert rows["layer2"]["size"] == [47, 47] and rows["layer2"]["stride"] == [4, 4]
    assert all(r["contained"] for r in rows.values())
    import matplotlib.image
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) >= 6
    for png in pngs:
        assert matplotlib.image.imread(png).ndim == 3
    assert "layer2" in (out / "erf_table.csv").read_text()
    assert "every measured gradient lies inside" in (out / "summary.md").read_text()


def test_erf_kind_config_errors(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(ERF.replace("samples = 2", "samples = 0"))
    with pytest.raises(runner.ConfigError, match=r"bad.toml:\d+: items\[0\].samples: must be >= 1"):
        runner.read_config(cfg)
    cfg.write_text(ERF.replace('units', 'unitz').replace('check_unitz', 'check_units')
                   + 'unitz = "all"\n')
    with pytest.raises(runner.ConfigError, match=r"unitz: unknown key \(did you mean 'units'"):
        runner.read_config(cfg)


def test_erf_kind_crop_key_gives_the_same_maps(tmp_path):
    """``crop = true`` in a config measures on crops (recorded per end-point) and changes no
    map beyond floating point."""
    import numpy as np
    maps = {}
    for crop in (False, True):
        cfg = tmp_path / f"erf_{crop}.toml"
        cfg.write_text(ERF.replace('input_size = 40', 'input_size = 96\nunits = "grid:3"\n'
                                   f'crop = {str(crop).lower()}\ncheck = false'))
        out = runner.run(cfg, out=tmp_path / f"out_{crop}", progress=False)
        (item,) = json.loads((out / "results.json").read_text())["items"]
        rows = {r["endpoint"]: r for r in item["endpoints"]}
        if crop:
            assert rows["layer1"]["crop"]["cropped_units"] == 9
            assert rows["layer1"]["crop"]["refused"] is None
        else:
            assert rows["layer1"]["crop"] is None
        maps[crop] = np.load(out / rows["layer1"]["map"])
    np.testing.assert_allclose(maps[True], maps[False], rtol=1e-5, atol=1e-7)
