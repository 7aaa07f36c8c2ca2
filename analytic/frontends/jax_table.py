"""The JAX frontend's rule table and the object a rule receives (:class:`Op`).

A rule is a named function ``rule(op) -> list[Value]``, one value per output of the
equation, registered under lax primitive names with ``@RULES.register("name", ...)``;
registering a name twice raises. Rules see every input as a :class:`Data` (depends on the
input), :class:`Const` (value known) or :class:`Weight` (independent, unknown) and build nodes
with ``op.emit`` / ``op.elementwise``. Equations whose inputs are all independent of the input
never reach a rule: they are folded (evaluated on demand).

User rules (``analyze(..., rules={name: rule})``) are either such a function or one of the
strings ``"pointwise"`` (every position reads the same position of every input) and
``"global"`` (every output reads all of every input).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpecError
from .jax_builder import Builder, Site
from .jax_maps import Read
from .jax_values import Const, Data, Value, Weight, plain_dim

Rule = Callable[["Op"], Sequence[Value]]


class RuleTable:
    """Rules keyed by primitive name; a name registered twice is an error."""

    def __init__(self, framework: str):
        self.framework = framework
        self._rules: dict[str, Rule] = {}

    def register(self, *names: str) -> Callable[[Rule], Rule]:
        def add(fn: Rule) -> Rule:
            for name in names:
                if name in self._rules:
                    raise SpecError(f"{self.framework} rule for {name!r} registered twice "
                                    f"({self._rules[name].__name__} and {fn.__name__})")
                self._rules[name] = fn
            return fn
        return add

    def get(self, name: str) -> Rule | None:
        return self._rules.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._rules))

    def items(self) -> list[tuple[str, Rule]]:
        return sorted(self._rules.items())


RULES = RuleTable("jax")


@dataclass
class Op:
    """One jaxpr equation as a rule sees it."""

    eqn: Any  # jax.extend.core.JaxprEqn
    inputs: list[Value]
    builder: Builder
    site: Site
    capture: Any  # the walker: ``capture.run(jaxpr, consts, args, op)`` for nested jaxprs

    @property
    def prim(self) -> str:
        return self.eqn.primitive.name

    @property
    def params(self) -> dict:
        return self.eqn.params

    @property
    def out_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(v.aval.shape) for v in self.eqn.outvars]

    def in_shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.eqn.invars[i].aval.shape)

    def data(self, i: int) -> Data | None:
        """Input i, or None if it does not depend on the input. It may be factored
        (``jax_values``); ``emit`` makes it simple unless factored dims pass unchanged."""
        x = self.inputs[i]
        return x if isinstance(x, Data) else None

    def const(self, i: int) -> np.ndarray | None:
        """The value of input i when it is a constant, else None."""
        x = self.inputs[i]
        return x.value if isinstance(x, Const) else None

    def emit(self, operands: Sequence[Data], out_shape: Sequence[int],
             reads: Sequence[Sequence[tuple[int, Read | None] | None]],
             pinned: Sequence[tuple[int, int, np.ndarray]] = (), kind: str = "window") -> Data:
        return self.builder.emit(self.site, operands, out_shape, reads, pinned, kind)

    def elementwise(self, out_shape: Sequence[int] | None = None) -> Data:
        xs = [x for x in self.inputs if isinstance(x, Data)]
        return self.builder.elementwise(self.site, xs, out_shape or self.out_shapes[0])

    def everything(self) -> list[Value]:
        """Every output depends on all of every data input (no spatial axis kept)."""
        xs = [x for x in self.inputs if isinstance(x, Data)]
        outs: list[Value] = []
        node = None
        for shape in self.out_shapes:
            if node is None:
                node = self.emit(xs, shape, [[None] * len(shape) for _ in xs], kind="global")
            outs.append(Data(node.node, tuple(plain_dim(None, n) for n in shape)))
        return outs


def is_data(v: Value) -> bool:
    return isinstance(v, Data)


def independent(v: Value) -> bool:
    return isinstance(v, (Const, Weight))
