"""Crop measurement (``erf.measure(crop=True)``, :mod:`erf.crop`): cropped and full-input maps
agree to floating-point tolerance on the frontend test networks, the JAX nets and random
networks; a net whose padding depends on the input size is refused, and forcing the crop
there gives a different answer (the refusal is necessary)."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import erf  # noqa: E402
from erf import crop as crops  # noqa: E402
from erf import engine, measure  # noqa: E402
from experiments.models.torch_nets import VGG16, DeepLab, MobileNetV2, ResNet, UNet  # noqa: E402


def both(model, shape, output, units, **kw):
    """(cropped, full) measurements of the same units, float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a refusal warns: fail on it here
        cropped = measure(model, shape, output=output, units=units, dtype="float64",
                          crop=True, **kw)
    full = measure(model, shape, output=output, units=units, dtype="float64", **kw)
    return cropped, full


def assert_same(cropped, full):
    assert np.abs(full.maps).max() > 0
    np.testing.assert_allclose(cropped.maps, full.maps, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(cropped.units, full.units)


TORCH_CASES = {
    "resnet-layer2": (lambda: ResNet((1, 1, 1, 1), width=2), (2, 3, 96, 80), "layer2", "all"),
    "resnet-layer3": (lambda: ResNet((2, 2, 2, 2), width=2), (1, 3, 160, 144), "layer3",
                      "grid:7"),
    "vgg16-conv3": (lambda: VGG16(fc=False), (1, 3, 72, 64), "conv3", "grid:9"),
    "mobilenet_v2-features.6": (lambda: MobileNetV2(div=8), (1, 3, 96, 96), "features.6",
                                "grid:4"),
    "deeplab-stage1": (lambda: DeepLab(width=2), (1, 3, 96, 88), "stage1", "grid:5"),
    "unet-down.2": (lambda: UNet(width=2), (1, 3, 96, 80), "down.2", "grid:6"),
    "unet-dec.1": (lambda: UNet(width=2), (1, 3, 160, 144), "dec.1", "grid:5"),  # upsampled
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_cropped_equals_full_torch(name):
    make, shape, output, units = TORCH_CASES[name]
    torch.manual_seed(0)
    model = make().eval()
    cropped, full = both(model, shape, output, units, variants=("signed",))
    info = cropped.settings["crop"]
    assert info["refused"] is None and info["cropped_units"] > 0
    assert all(s != list(shape[2:]) for s in info["crop_shapes"])  # really smaller
    assert_same(cropped, full)
    np.testing.assert_allclose(cropped.signed, full.signed, rtol=1e-9, atol=1e-12)


def test_cropped_equals_full_jax():
    jax = pytest.importorskip("jax")  # noqa: F841
    from experiments.models import jax_nets, slim_jax
    cropped, full = both(jax_nets.small_resnet(), (2, 3, 96, 96), "layer2", "grid:6",
                         layout="NCHW")
    assert cropped.settings["crop"]["cropped_units"] == 36
    assert_same(cropped, full)
    vgg = slim_jax.vgg_16(width=1 / 16)  # channels last
    cropped, full = both(vgg, (1, 64, 56, 3), "conv3", "grid:5", layout="NHWC")
    assert cropped.settings["crop"]["cropped_units"] > 0
    assert_same(cropped, full)


def test_random_networks_crop_equals_full():
    """Random fuzz descriptions (1-D to 3-D, every op): whatever the plan decides (crop,
    whole input, refusal), the maps equal the full-input ones; and many really crop."""
    from experiments.fuzz import random_description
    from experiments.fuzz_torch import build
    kinds = {"cropped": 0, "refused": 0, "whole": 0}
    for seed in range(40):
        built = build(random_description(random.Random(seed)), seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cropped = measure(built.model, built.shape, units="all", dtype="float64", crop=True)
        full = measure(built.model, built.shape, units="all", dtype="float64")
        np.testing.assert_allclose(cropped.maps, full.maps, rtol=1e-9, atol=1e-12,
                                   err_msg=f"seed {seed}")
        info = cropped.settings["crop"]
        kinds["refused" if info["refused"] else "cropped" if info["cropped_units"]
              else "whole"] += 1
    assert kinds["cropped"] >= 8, kinds


def test_pack_with_crop():
    """Units whose crop would be the whole input go through the full pass, packed."""
    model = ResNet((1, 1, 1, 1), width=2).eval()
    cropped, full = both(model, (1, 3, 64, 64), "layer3", "all", pack=True, samples=2,
                         init="normal")
    info = cropped.settings["crop"]
    assert info["full_units"] > 0 and cropped.settings["groups"] < info["full_units"]
    assert_same(cropped, full)


class SamePad(nn.Module):
    """TensorFlow 'SAME': the padding is computed from the input size at forward time."""

    def __init__(self, k: int, s: int):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(1, 1, k, s)

    def forward(self, x):
        pads = []
        for n in reversed(x.shape[2:]):
            total = max(self.k - (n % self.s or self.s), 0)
            pads += [total // 2, total - total // 2]
        return self.conv(F.pad(x, pads))


def test_size_dependent_padding_is_refused_and_forcing_is_wrong():
    torch.manual_seed(0)
    model = nn.Sequential(SamePad(3, 2), SamePad(3, 2), SamePad(3, 2), SamePad(3, 1)).double()
    shape, units = (1, 1, 67, 67), [[3, 3], [4, 5]]
    with pytest.warns(UserWarning, match="depends on the input size"):
        refused = measure(model, shape, output="3", units=units, crop=True)
    assert "depends on the input size" in refused.settings["crop"]["refused"]
    full = measure(model, shape, output="3", units=units)
    np.testing.assert_array_equal(refused.maps, full.maps)  # measured on the full input
    assert "not cropped" in refused.summary()

    # forced: the same plan without the check, through the same engine
    s = engine.setup(model, shape, output="3", units=np.array(units))
    p = crops.plan(s.analysis, s.units, s.boxes)
    assert len(p.units) == 2
    p.node_shapes = [engine._analysis(model, (1, 1, *size), "3", "torch", None, None)
                     .node().shape for size in p.shapes]
    s.crop = p
    forced = np.concatenate([b.full_maps("abs", shape[2:])
                             for b in engine.run(s, samples=1, seed=0)])
    assert forced.shape == full.maps.shape
    assert not np.allclose(forced, full.maps)  # the refusal is necessary


def test_global_end_point_is_refused_with_reason():
    model = ResNet((1, 1, 1, 1), width=2)
    with pytest.warns(UserWarning, match="is global"):
        r = measure(model, (1, 3, 64, 64), output="avgpool", crop=True)
    assert r.settings["crop"]["cropped_units"] == 0


def test_crop_start_multiple_covers_every_stride():
    """The crop starts keep the phase of every node: the lcm of all strides on the path."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=(2, 3)), nn.Conv2d(1, 1, 3, stride=(3, 2)),
                          nn.Conv2d(1, 1, 1))
    from analytic import analyze
    a = analyze(model, (1, 1, 200, 200))
    assert crops.phase_multiple(a) == (6, 6)
    s = engine.setup(model, (1, 1, 200, 200), units="all", crop=True)
    assert np.all(s.crop.starts % 6 == 0)
    assert s.crop.refused is None and len(s.crop.units) > 0


def test_cli_crop(tmp_path, capsys):
    from erf.cli import main
    code = main(["measure", "experiments.models.modern:small_resnet", "--input-shape",
                 "1,3,96,96", "--output", "layer2", "--units", "grid:3", "--crop", "--out",
                 str(tmp_path), "--quiet"])
    assert code == 0
    import json
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["crop"]["cropped_units"] == 9
    assert "units on crops" in capsys.readouterr().out


class OomAbove(nn.Module):
    """Raises CUDA's out-of-memory error when more than ``limit`` crops come in (inputs that
    require grad: the crop path's; not the analysis' trace)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        if x.requires_grad and x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.conv(self.conv(x))


def test_out_of_memory_halves_the_crops_per_pass():
    model = OomAbove(3)
    cropped = measure(model, (1, 1, 40, 40), units="all", crop=True, chunk=16)
    full = measure(model, (1, 1, 40, 40), units="all")
    assert cropped.settings["crop_chunk"] == 2
    np.testing.assert_allclose(cropped.maps, full.maps, rtol=1e-6, atol=1e-9)
    with pytest.raises(erf.MeasureError, match="one impulse does not fit in memory"):
        measure(OomAbove(0), (1, 1, 40, 40), units="all", crop=True)


def test_out_of_memory_halves_the_chunk(monkeypatch):
    from erf import torch_backend
    grads = torch_backend.TorchPass._grads

    def limited(self, cot):
        if len(cot) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return grads(self, cot)
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1))
    want = measure(model, (1, 1, 12, 12), units="all", chunk=1)
    monkeypatch.setattr(torch_backend.TorchPass, "_grads", limited)
    got = measure(model, (1, 1, 12, 12), units="all", chunk=8)
    assert got.settings["chunk"] == 2
    np.testing.assert_array_equal(got.maps, want.maps)
    with pytest.raises(RuntimeError, match="other"):  # anything else is not caught
        monkeypatch.setattr(torch_backend.TorchPass, "_grads",
                            lambda self, cot: (_ for _ in ()).throw(RuntimeError("other")))
        measure(model, (1, 1, 12, 12), units="all")


def test_cone_boxes_equal_the_gradient_support_at_every_layer():
    """erf.cones against autograd: with positive weights and no nonlinearity, a unit depends on
    an intermediate position exactly where its gradient there is nonzero."""
    from analytic import analyze
    from erf.cones import cone_boxes
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1),
                          nn.Conv2d(1, 1, 3, padding=2, dilation=2),
                          nn.AvgPool2d(2, stride=2, padding=1),
                          nn.Conv2d(1, 1, (2, 3), stride=(1, 2), padding=(0, 3))).double()
    for m in model:
        for p in m.parameters():
            p.data.fill_(1.0)
    shape = (1, 1, 23, 19)
    a = analyze(model, shape)
    out = a.graph[a.output].shape
    units = np.array([(i, j) for i in range(out[0]) for j in range(out[1])])
    cones = cone_boxes(a.graph, a.output, units)
    acts = []

    def keep(module, args, out):
        out.retain_grad()
        acts.append(out)
    handles = [m.register_forward_hook(keep) for m in model]
    reads_something = 0
    for u in units:
        acts.clear()
        x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
        y = model(x)
        y[0, 0, u[0], u[1]].backward()
        for k, act in enumerate(acts[:-1]):
            nz = np.argwhere(act.grad[0, 0].numpy() != 0)
            lo, hi = (c[np.flatnonzero((units == u).all(1))[0]]
                      for c in cones[a.graph.resolve(str(k))])
            if not len(nz):  # the unit reads only padding there
                assert np.any(lo > hi), (u, k)
                continue
            assert np.array_equal(lo, nz.min(0)) and np.array_equal(hi, nz.max(0)), (u, k)
            reads_something += 1
    assert reads_something > len(units)
    for h in handles:
        h.remove()


def test_a_bias_only_position_read_by_a_unit_refuses_the_crop():
    """Random net 390 (found by the 500-net stress run): a unit multiplies a position whose
    window reads only padding (its value is a bias); in a crop it would be the zero of a pad.
    The regions agree, the dependency cones do not: refused, and the maps equal the full ones."""
    from experiments.fuzz import random_description
    from experiments.fuzz_torch import build
    built = build(random_description(random.Random(390)), seed=390)
    with pytest.warns(UserWarning, match="a unit reads positions of node .* outside a crop"):
        cropped = measure(built.model, built.shape, units="all", dtype="float64", crop=True)
    full = measure(built.model, built.shape, units="all", dtype="float64")
    np.testing.assert_array_equal(cropped.maps, full.maps)
    assert np.abs(full.maps).max() > 0


def test_input_without_batch_axis_is_not_cropped():
    """A JAX function of one (H, W, C) image: no batch axis to stack crops along."""
    jax = pytest.importorskip("jax")
    def fn(x):
        y = x[None]
        w = jax.numpy.ones((3, 3, 1, 1), x.dtype)  # float64 under a process-wide x64 too
        for _ in range(2):
            y = jax.lax.conv_general_dilated(y, w, (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y[0]
    with pytest.warns(UserWarning, match="stacked along the batch axis and this input has none"):
        r = measure(fn, (30, 30, 1), layout="HWC", units="grid:3", crop=True)
    full = measure(fn, (30, 30, 1), layout="HWC", units="grid:3")
    np.testing.assert_array_equal(r.maps, full.maps)
    assert np.abs(full.maps).max() > 0
