"""PyTorch backend: a private eval-mode copy of the model, the end-point by forward hook,
one forward per sample (``torch.func.vjp``, whose vjp serves every chunk) and backward passes
batched over chunks of impulses (``torch.func.vmap`` of the vjp).

The user's model is never touched: it is deep-copied, and the copy is put in eval mode, cast
to the requested dtype/device and re-initialised there. Batch norm that would still use batch
statistics after ``eval()`` (``track_running_stats=False``, or a module that ignores
``eval()``) mixes every position of the batch and is refused unless ``allow_train_mode``
(which also keeps the modules' own train/eval flags instead of calling ``eval()``).
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .impulses import (
    Layout,
    MeasureError,
    cpu_budget,
    impulse_index,
    infer_layout,
    reduce_axes,
    stacked_cotangent,
    unstacked_layout,
)

FRAMEWORK = "torch"
_CALL = re.compile(r"^(.*)@(\d+)$")  # "layer1.0.relu@2": the third call of a module


def resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MeasureError(f"device={str(device)!r} was requested but torch "
                           f"{torch.__version__} sees no CUDA device "
                           f"(built with CUDA {torch.version.cuda}); use device='cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise MeasureError(f"device={str(device)!r} was requested but MPS is not available")
    return dev


def resolve_endpoint(model: torch.nn.Module, analysis: Any, node: str,
                     output: str | None) -> tuple[str | None, int | None, int]:
    """Which forward-hook output is the analysis node ``node``: (module path, call, calls).

    (None, None, 0) is the model's own output (the graph's output node). ``call`` picks one
    call of a module applied several times in one forward (torchvision's shared ReLU): the
    node's rank among the graph's nodes carrying exactly that path, ``calls`` their number
    (the hook checks it); None means the last call (a module's output is the last node inside
    it). A path ``"name@k"`` names call k directly (and the plain path then call 0).
    """
    graph = analysis.graph
    if node == (graph.output or list(graph.nodes)[-1]):
        return None, None, 0
    modules = dict(model.named_modules())
    path = graph[node].path
    for name in (output, path):
        if not name:
            continue
        m = _CALL.match(name)
        if m and m.group(1) in modules:
            return m.group(1), int(m.group(2)), 0
        if name in modules:
            same = [n.name for n in graph if n.path == name]
            if node in same and any(n.path.startswith(name + "@") for n in graph):
                return name, 0, 0  # later calls are named "name@k": this is the first
            if node in same and len(same) > 1:
                return name, same.index(node), len(same)
            return name, None, 0
    raise MeasureError(
        f"end-point {output or node!r} (node {node!r}, path {path!r}) is not the output of a "
        "submodule, so a forward hook cannot capture it without editing the model: choose a "
        "module path (e.g. 'layer3'), or wrap that computation in its own nn.Module")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def _batchnorm_with_batch_stats(model: torch.nn.Module) -> list[str]:
    norms = (torch.nn.modules.batchnorm._BatchNorm,)
    return [name or "<model>" for name, m in model.named_modules()
            if isinstance(m, norms) and (m.training or m.running_mean is None)]


@contextlib.contextmanager
def largest_output(first: torch.Tensor) -> Iterator[list[int]]:
    """Inside the block, [bytes of the largest tensor any module returns] (at least
    ``first``'s)."""
    largest = [first.numel() * first.element_size()]

    def measure(module, args, out):
        if isinstance(out, torch.Tensor):
            largest[0] = max(largest[0], out.numel() * out.element_size())
    handle = torch.nn.modules.module.register_module_forward_hook(measure)
    try:
        yield largest
    finally:
        handle.remove()


def working_set(largest: int, x: torch.Tensor, y: torch.Tensor) -> int:
    """Backward working set per impulse: a few activation-sized buffers, the input gradient
    and the cotangent itself (calibrated on ResNet-50, see benchmarks/bench_erf_speed.py)."""
    return 6 * largest + 2 * x.numel() * x.element_size() + y.numel() * y.element_size()


class TorchBackend:
    """Runs impulses through a copy of ``model`` (see the module docstring)."""

    framework = FRAMEWORK

    def __init__(self, model: torch.nn.Module, *, input_shape: Sequence[int], layout: Layout,
                 node_shape: Sequence[int], endpoint: tuple[str | None, int | None, int],
                 device: str = "cpu", dtype: Any = None, init: Any = None,
                 allow_train_mode: bool = False):
        self.device = resolve_device(device)
        try:
            copied = copy.deepcopy(model)
        except Exception as e:  # noqa: BLE001 - say what failed and what to do
            raise MeasureError(f"could not copy the model to measure it without changing it "
                               f"({type(e).__name__}: {e})") from e
        if not allow_train_mode:
            copied.eval()
            bad = _batchnorm_with_batch_stats(copied)
            if bad:
                raise MeasureError(
                    f"batch norm uses batch statistics even in eval mode in {bad[:4]}: it mixes "
                    "every position, so gradients are global. Give it running statistics "
                    "(track_running_stats=True), or pass allow_train_mode=True to measure it")
        self.dtype = _torch_dtype(dtype) if dtype is not None else model_dtype(copied)
        self.model = copied.to(device=self.device, dtype=self.dtype)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.init = init
        self.input_shape = tuple(int(n) for n in input_shape)
        self.layout = layout
        self.node_shape = tuple(node_shape)
        self.path, self.call, self.calls = endpoint
        self.batched: bool | str = True  # the reason, once vmap has failed
        self.module = dict(self.model.named_modules())[self.path] if self.path else None

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).replace("torch.", "")

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    @property
    def on_cpu(self) -> bool:
        return self.device.type == "cpu"

    def memory_budget(self) -> int:
        """Default bytes for one chunk of impulses: half the free GPU memory, or a quarter of
        the machine's memory up to 2 GiB on CPU."""
        if self.device.type == "cuda":
            return int(torch.cuda.mem_get_info(self.device)[0] // 2)
        return cpu_budget()

    def _endpoint(self, x: torch.Tensor) -> torch.Tensor:
        if self.module is None:
            y = self.model(x)
        else:
            outputs: list[Any] = []
            handle = self.module.register_forward_hook(lambda m, a, out: outputs.append(out))
            try:
                self.model(x)
            finally:
                handle.remove()
            y = self._pick(outputs)
        if not isinstance(y, torch.Tensor):
            where = f"module {self.path!r}" if self.path else "the model"
            raise MeasureError(f"{where} returns a {type(y).__name__}, not a tensor; choose "
                               "an end-point with output= (a module path)")
        return y

    def _pick(self, outputs: list[Any]) -> Any:
        path, call, calls = self.path, self.call, self.calls
        if not outputs:
            raise MeasureError(f"module {path!r} was not called in the forward pass")
        if call is None:
            return outputs[-1]
        if calls and len(outputs) != calls:
            if call == calls - 1:  # several graph nodes per call: the last one is the output
                return outputs[-1]
            raise MeasureError(f"module {path!r} ran {len(outputs)} times but the graph has "
                               f"{calls} nodes with that path; cannot tell which call is the "
                               f"end-point: name it as '{path}@CALL'")
        if call >= len(outputs):
            raise MeasureError(f"module {path!r} ran {len(outputs)} times; the end-point "
                               f"needs call {call}")
        return outputs[call]

    def free_memory(self) -> None:
        """Return cached device memory after running out of it."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def begin_sample(self, init_seed: int | None) -> None:
        """Re-initialise the weights for a new sample (when ``init`` is given)."""
        if self.init is not None and init_seed is not None:
            self.init(self.model, init_seed)

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), device=self.device).to(self.dtype)

    def start(self, x: np.ndarray) -> TorchPass:
        """One forward pass on input ``x`` with the sample's weights."""
        xt = self._tensor(x)
        with largest_output(xt) as largest:
            try:
                y, vjp = torch.func.vjp(self._endpoint, xt)
            except (RuntimeError, TypeError) as e:
                raise MeasureError(
                    f"the forward pass failed on a {self.dtype_name} input of shape "
                    f"{list(xt.shape)} on {self.device} ({type(e).__name__}: {e}). The model "
                    "copy was cast to that dtype and device: tensors it holds outside "
                    "parameters and buffers were not") from e
        where = f"output of {self.path!r}" if self.path else "model output"
        out_layout = infer_layout(tuple(y.shape), self.node_shape, self.layout.channels_last,
                                  self.layout.batch is not None, what=where)
        return TorchPass(self, y, vjp, out_layout, working_set(largest[0], xt, y))

    def crop_backward(self, crops: np.ndarray, inner: np.ndarray, node_shape: Sequence[int],
                      variants: Sequence[str]) -> tuple[dict, int]:
        """Per-crop reduced maps (k, *crop_spatial) of crops (k, *crop_input_shape) stacked
        along the batch axis, crop j's impulse at ``inner[j]`` of the end-point (whose shape at
        this crop size is ``node_shape``); and the estimated working set per crop in bytes."""
        layout = self.layout
        k, per_crop = len(crops), crops.shape[1 + layout.batch]
        xt = self._tensor(np.concatenate(list(crops), axis=layout.batch)).requires_grad_(True)
        with largest_output(xt) as largest, torch.enable_grad():
            y = self._endpoint(xt)
        out_layout = infer_layout(tuple(y.shape), node_shape, layout.channels_last, True,
                                  what=f"output of {self.path or 'the model'} on crops")
        cot = torch.as_tensor(stacked_cotangent(y.shape, out_layout, inner, per_crop),
                              device=y.device, dtype=y.dtype)
        (g,) = torch.autograd.grad(y, xt, cot)
        one, order = unstacked_layout(layout)
        g = g.permute(order)
        g = g.reshape(k, per_crop, *g.shape[1:])
        return reduce_grads(g, one, variants), working_set(largest[0], xt, y) // k


class TorchPass:
    """The forward pass of one sample; :meth:`backward` runs chunks of impulse groups."""

    def __init__(self, backend: TorchBackend, y: torch.Tensor, vjp: Any, out_layout: Layout,
                 bytes_per_cotangent: int):
        self.backend, self.y, self.vjp, self.out_layout = backend, y, vjp, out_layout
        self.bytes_per_cotangent = bytes_per_cotangent

    def backward(self, groups: Sequence[np.ndarray], variants: Sequence[str]) -> dict:
        """Per-group reduced maps (len(groups), *input_spatial), float64 numpy, per variant."""
        y = self.y
        cot = torch.zeros((len(groups), *y.shape), dtype=y.dtype, device=y.device)
        axes = self.out_layout.axes
        view = cot.movedim(tuple(1 + a for a in axes), tuple(range(1, 1 + len(axes))))
        index = tuple(torch.as_tensor(i, device=y.device)
                      for i in impulse_index(self.out_layout, groups))
        view[index] = 1
        return reduce_grads(self._grads(cot), self.backend.layout, variants)

    def _grads(self, cot: torch.Tensor) -> torch.Tensor:
        b = self.backend
        if b.batched is True and len(cot) > 1:
            try:
                return torch.func.vmap(self.vjp)(cot)[0]
            except RuntimeError as e:  # an op without a batching rule: correct, slower
                b.batched = f"one backward per impulse (vmap failed: {e})"
        return torch.stack([self.vjp(c)[0] for c in cot])


def reduce_grads(grads: torch.Tensor, layout: Layout, variants: Sequence[str]) -> dict:
    """|g|, g or g^2 summed over channels and averaged over batch entries, as float64 numpy."""
    channels, batch = reduce_axes(layout)
    out = {}
    for v in variants:
        t = grads.abs() if v == "abs" else grads.square() if v == "squared" else grads
        if channels:
            t = t.sum(dim=channels)
        if batch is not None:
            t = t.mean(dim=batch)
        out[v] = t.detach().to(device="cpu", dtype=torch.float64).numpy()
    return out


def _torch_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    name = np.dtype(dtype).name
    try:
        return getattr(torch, name)
    except AttributeError:
        raise MeasureError(f"dtype {dtype!r} has no torch equivalent") from None


def to_numpy_input(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
