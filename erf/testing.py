"""Assertions for users' regression tests: the receptive field a model should have, and
gradients that stay inside it.

```python
from erf.testing import assert_gradients_within_bounds, assert_receptive_field

def test_backbone_receptive_field():
    assert_receptive_field(Backbone(), (1, 3, 224, 224), size=483, stride=32, padding=239,
                           output="layer4")
    assert_gradients_within_bounds(Backbone(), (1, 3, 64, 64), units="grid:3", output="layer4")
```
"""

from __future__ import annotations

from typing import Any

from analytic.api import analyze

from .check import check


def _per_axis(value: Any, ndim: int) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) * ndim


def assert_receptive_field(model: Any, input_shape=None, *, size: Any = None,
                           stride: Any = None, padding: Any = None, output: str | None = None,
                           **analyze_options: Any) -> None:
    """Assert the analytic size, stride and padding (paper's r, S, P) of ``output``.

    Each expectation is an int (the same on every input axis), a tuple per axis, or None (not
    checked). ``model`` is anything :func:`analytic.analyze` takes. Raises ``AssertionError``
    naming each quantity with its expected and actual value.
    """
    a = analyze(model, input_shape, output=output, **analyze_options)
    ndim = len(a.input_shape)
    wrong = []
    for name, want, got in (("size", size, a.size), ("stride", stride, a.stride),
                            ("padding", padding, a.padding)):
        expected = _per_axis(want, ndim)
        if expected is not None and tuple(expected) != tuple(got):
            wrong.append(f"{name}: expected {expected}, got {tuple(got)}")
    if wrong:
        node = a.node()
        raise AssertionError(f"receptive field of {node.path or node.name} at input "
                             f"{list(a.input_shape)}:\n  " + "\n  ".join(wrong))


def assert_gradients_within_bounds(model: Any, input_shape=None, *, units: Any = "grid:4",
                                   output: str | None = None, samples: int = 2,
                                   **check_options: Any) -> None:
    """Assert that every input gradient of the chosen ``units`` lies inside their exact
    analytic regions (:func:`erf.check`, float64). The message lists each violation: the unit,
    the axis, the region expected and the index where a gradient was found."""
    result = check(model, input_shape, units=units, output=output, samples=samples,
                   **check_options)
    if not result.ok:
        raise AssertionError(result.summary(limit=20))
