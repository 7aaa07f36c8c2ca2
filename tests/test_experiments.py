"""Experiment configs: validation errors name file, line and key; runs are atomic, resumable."""

import json
import os
from pathlib import Path

import pytest

from experiments import runner
from experiments.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "analytic" / "specs"

TABLE = f"""name = "tiny"
description = "two specs"
kind = "table"

[reference]
csv = "{ROOT / 'configs' / 'data' / 'distill_table.csv'}"
plot_accuracy = true

[defaults]
framework = "spec"
input_size = 224

[[items]]
model = "{SPEC / 'vgg_16.json'}"
label = "vgg_16"

[[items]]
model = "{SPEC / 'alexnet_v2.json'}"
label = "alexnet_v2"
"""


def write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("edit, match", [
    (("kind = \"table\"", "kind = \"tabel\""), r"c.toml:3: kind: must be one of"),
    (("seed", "seed"), None),
    (("input_size = 224", "input_size = \"224\""), r"c.toml:11: defaults.input_size: expected "
                                                   r"int, got str"),
    (("label = \"vgg_16\"", "lable = \"vgg_16\""),
     r"c.toml:15: items\[0\].lable: unknown key \(did you mean 'label'\?\)"),
    (("name = \"tiny\"\n", ""), r"c.toml: name: missing required key"),
    (("model = \"" + str(SPEC / "vgg_16.json") + "\"\n", ""),
     r"items\[0\].model: missing required key"),
    (("[reference]", "[referense]"), r"c.toml:5: \[referense\]: unknown table"),
    (("input_size = 224", "input_size = 0"), r"defaults.input_size: must be >= 1, got 0"),
    (("plot_accuracy = true", "plot_accuracy = 1"), r"reference.plot_accuracy: expected bool"),
    (("[[items]]\nmodel", "[[items]]\nmodel = 3\nx"), r"items\[0\].model: expected str"),
    (("name = \"tiny\"", "name = \"tiny\"\nname2 ="), r"c.toml: malformed TOML"),
])
def test_config_errors_name_file_line_and_key(tmp_path, edit, match):
    if match is None:
        return
    text = TABLE.replace(*edit, 1)
    with pytest.raises(ConfigError, match=match):
        runner.read_config(write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope.toml does not exist"):
        runner.read_config(tmp_path / "nope.toml")


def test_missing_model_is_named_before_work(tmp_path):
    text = TABLE.replace(str(SPEC / "alexnet_v2.json"), str(tmp_path / "gone.json"))
    out = tmp_path / "out"
    with pytest.raises(Exception, match=r"gone.json does not exist"):
        runner.run(write(tmp_path, text), out=out, progress=False)


def test_table_run_end_to_end_and_resume(tmp_path):
    out = tmp_path / "out"
    runner.run(write(tmp_path, TABLE), out=out, progress=False)
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1 and len(results["items"]) == 2
    rows = {r["model"]: r for r in results["items"]}
    # published values (DESIGN.md §7), not computed here
    assert rows["vgg_16"]["size"] == [212, 212] and rows["vgg_16"]["padding"] == [90, 90]
    assert rows["alexnet_v2"]["comparison"] == "equal"
    csv_text = (out / "table.csv").read_text()
    assert "vgg_16,pool5,224,212,32,90,True,equal" in csv_text
    png = (out / "accuracy_vs_rf.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    import matplotlib.image
    assert matplotlib.image.imread(out / "accuracy_vs_rf.png").ndim == 3
    assert "2 of 2 rows equal" in (out / "summary.md").read_text()
    assert (out / "config.toml").read_text() == TABLE

    item = out / "items" / "000-vgg_16.json"
    before = item.stat().st_mtime_ns
    os.utime(item, ns=(before - 10**9, before - 10**9))
    stamp = item.stat().st_mtime_ns
    runner.run(write(tmp_path, TABLE), out=out, progress=False)
    assert item.stat().st_mtime_ns == stamp  # finished item skipped
    runner.run(write(tmp_path, TABLE), out=out, progress=False, force=True)
    assert item.stat().st_mtime_ns != stamp  # --force recomputes


def test_changed_settings_recompute(tmp_path):
    out = tmp_path / "out"
    runner.run(write(tmp_path, TABLE), out=out, progress=False)
    runner.run(write(tmp_path, TABLE.replace("input_size = 224", "input_size = 321")),
               out=out, progress=False)
    rows = json.loads((out / "results.json").read_text())["items"]
    assert all(r["input_size"] == 321 for r in rows)


def test_crash_leaves_no_half_written_file(tmp_path, monkeypatch):
    from experiments.kinds import table
    out = tmp_path / "out"
    calls = []
    real = table.run_item

    def crash_on_second(item, ctx, item_id):
        calls.append(item_id)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(item, ctx, item_id)

    monkeypatch.setattr(table, "run_item", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        runner.run(write(tmp_path, TABLE), out=out, progress=False)
    files = sorted(p.name for p in (out / "items").iterdir())
    assert files == ["000-vgg_16.json"]  # the finished item, nothing partial
    assert not list(out.rglob("*.tmp")) and not (out / "results.json").exists()
    json.loads((out / "items" / "000-vgg_16.json").read_text())


def test_atomic_write_removes_temp_on_failure(tmp_path):
    from experiments.io import atomic_write

    def boom(p):
        p.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "x.json", boom)
    assert list(tmp_path.iterdir()) == []
