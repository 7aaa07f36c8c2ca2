"""Weight re-initialisations for ERF samples (Luo et al. 2016 average over random weights).

An *init* is a callable ``init(target, seed)`` applied once per sample to a private copy of
the model: for PyTorch ``target`` is the copied ``nn.Module`` (changed in place; the return
value is ignored), for JAX it is the params pytree of a ``(fn, params)`` pair (the new pytree
is returned). The factories below re-draw every *weight* (a parameter with two or more axes:
convolution kernels, linear matrices) from numpy's generator seeded with ``seed``, and leave
biases and normalisation scales/shifts (one-axis parameters) as they are: the gradient of a
linear network does not depend on them, and zeroing a norm scale would kill it.
Names accepted by ``measure(init=...)``: ``"normal"`` (N(0, 1)), ``"uniform"`` (U[-1, 1)),
``"ones"`` (every weight 1: the box-convolution oracle of DESIGN.md §7).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from analytic.errors import SpecError

Init = Callable[[Any, int], Any]


def _weights(draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]) -> Init:
    def init(target: Any, seed: int) -> Any:
        rng = np.random.default_rng(seed)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(target, torch.nn.Module):
            with torch.no_grad():
                for _, p in target.named_parameters():
                    if p.ndim >= 2:
                        p.copy_(torch.from_numpy(draw(rng, tuple(p.shape))))
            return target
        import jax
        import jax.numpy as jnp

        def leaf(a):
            if getattr(a, "ndim", 0) >= 2 and jnp.issubdtype(a.dtype, jnp.floating):
                return jnp.asarray(draw(rng, tuple(a.shape)), a.dtype)
            return a
        return jax.tree.map(leaf, target)
    return init


def normal_(std: float = 1.0, mean: float = 0.0) -> Init:
    """Weights ~ N(mean, std^2), i.i.d."""
    init = _weights(lambda rng, shape: rng.normal(mean, std, shape))
    init.__name__ = f"normal_(std={std}, mean={mean})"
    return init


def uniform_(low: float = -1.0, high: float = 1.0) -> Init:
    """Weights ~ U[low, high), i.i.d."""
    init = _weights(lambda rng, shape: rng.uniform(low, high, shape))
    init.__name__ = f"uniform_(low={low}, high={high})"
    return init


def constant_(value: float) -> Init:
    """Every weight equal to ``value``."""
    init = _weights(lambda rng, shape: np.full(shape, float(value)))
    init.__name__ = f"constant_({value})"
    return init


def ones_() -> Init:
    """Every weight 1 (DESIGN.md §7: an all-ones stack's gradient is the self-convolved box)."""
    init = constant_(1.0)
    init.__name__ = "ones_()"
    return init


NAMED: dict[str, Callable[[], Init]] = {"normal": normal_, "uniform": uniform_, "ones": ones_}


def resolve(init: str | Init | None) -> Init | None:
    """An init callable from a name in :data:`NAMED`, a callable, or None (keep the weights)."""
    if init is None or callable(init):
        return init
    if isinstance(init, str) and init in NAMED:
        return NAMED[init]()
    raise SpecError(f"init={init!r}: use one of {', '.join(NAMED)}, a callable "
                    "init(model_or_params, seed), or None to keep the model's weights")


def describe(init: str | Init | None) -> str | None:
    """A JSON-friendly name of an init for the settings."""
    if init is None or isinstance(init, str):
        return init
    return getattr(init, "__name__", repr(init))
