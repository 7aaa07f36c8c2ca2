"""The torch rule table and what a rule sees: :class:`OpCall` and the per-dim map helpers.

A rule describes one op per *torch dim*: for each input-dependent tensor argument, one entry
per output dim saying which dim of that argument it reads and how, as an
:class:`~analytic.graph.AxisMap` whose ``src`` is a dim of the argument (helpers below:
:func:`same`, :func:`window`, :func:`reads`, :func:`whole`, :func:`bcast`), or None where the
output dim does not read that argument (broadcast, a new dim). Argument dims no entry reads are
reduced: every output position depends on all of them. The frontend decides which dims are
spatial and turns the maps into IR edges; rules never need to know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SpecError
from ..geometry import Window
from ..graph import AxisMap

Key = str | tuple[str, int]  # an argument by schema name, or (name, index) inside a list
Maps = tuple[Any, ...]  # per output dim: AxisMap | Whole | None (src = a dim of the argument)


class RuleError(Exception):
    """Raised by a rule for a variant it cannot express; reported like a missing rule."""


@dataclass(frozen=True)
class Whole:
    """Every output position reads all of argument dim ``src`` (global along it)."""

    src: int
    kind: str = "global"


CONSTANT = object()  # a rule's answer: the output does not depend on the input's values


@dataclass(frozen=True)
class Relayout:
    """A rule's answer for views: the same values, dims regrouped (``perm`` None: a reshape to
    the output shape) or reordered (``perm``: output dim i is input dim perm[i]; None there is
    a new size-1 dim; input dims left out must have size 1, as in ``squeeze``)."""

    perm: tuple[int | None, ...] | None = None


@dataclass(frozen=True)
class PerOutput:
    """A rule's answer for ops returning several tensors: one answer per output (None: that
    output does not depend on the input)."""

    outputs: tuple[Any, ...]


# ---- map helpers (src = a dim of the argument) --------------------------------------------------


def same(d: int) -> AxisMap:
    """Output position i reads argument position i along dim ``d``."""
    return AxisMap.identity(d)


def window(d: int, w: Window, kind: str = "window") -> AxisMap:
    """A sliding window along dim ``d`` (the paper's view: r, S, P stay defined)."""
    return AxisMap(d, w, None, kind)


def reads(d: int, idx: np.ndarray, kind: str, w: Window | None = None) -> AxisMap:
    """Explicit reads along dim ``d``: ``idx[i]`` lists the positions output i reads, -1 none.
    With ``w`` the paper's view stays defined (e.g. reflect padding), the reads are exact."""
    return AxisMap(d, w, np.asarray(idx, dtype=np.int64).reshape(len(idx), -1), kind)


def whole(d: int, kind: str = "global") -> Whole:
    return Whole(d, kind)


def bcast(d: int, n_out: int) -> AxisMap:
    """A size-1 dim broadcast to ``n_out``: every output position reads position 0."""
    return AxisMap(d, None, np.zeros((n_out, 1), dtype=np.int64), "broadcast")


def default_map(d: int, n_in: int, n_out: int) -> AxisMap | Whole:
    """Identity when sizes agree, broadcast from size 1, else global along the dim."""
    if n_in == n_out:
        return same(d)
    if n_in == 1:
        return bcast(d, n_out)
    return whole(d)


# ---- the call a rule sees -----------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One input-dependent tensor argument of a call."""

    key: Key
    node: Any  # the torch.fx.Node
    shape: tuple[int, ...]


@dataclass
class OpCall:
    """One op application: the op, its arguments by schema name, shapes, helpers.

    ``args``: every schema argument by name (defaults filled; tensors are ``torch.fx.Node``).
    ``inputs``: the tensor arguments that depend on the analysed input, with shapes.
    ``out_shapes``: one shape per output (None for a non-tensor output).
    """

    op: Any
    name: str
    args: dict[str, Any]
    inputs: list[Arg]
    out_shapes: list[tuple[int, ...] | None]
    where: str
    dtype: Any = None
    shape_of: Callable[[Any], tuple[int, ...]] = field(default=lambda a: (), repr=False)
    value_of: Callable[[Any], Any] = field(default=lambda a: a, repr=False)

    @property
    def out_shape(self) -> tuple[int, ...]:
        shape = self.out_shapes[0]
        assert shape is not None
        return shape

    def shape(self, arg: Any) -> tuple[int, ...]:
        """Shape of any tensor argument (input-dependent or not), e.g. a conv weight."""
        return self.shape_of(arg)

    def value(self, arg: Any) -> Any:
        """Concrete value of an argument that does not depend on the input (index tensors)."""
        return self.value_of(arg)

    def arg(self, key: Key) -> Arg | None:
        return next((a for a in self.inputs if a.key == key), None)

    def ints(self, name: str, n: int, default: int | None = None) -> tuple[int, ...]:
        """An int or int-list argument expanded to ``n`` entries (torch's [k] == [k]*n)."""
        v = self.args.get(name)
        if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
            if default is None:
                raise RuleError(f"argument {name!r} is missing")
            v = default
        vals = [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)]
        if len(vals) == 1:
            vals = vals * n
        if len(vals) != n:
            raise RuleError(f"argument {name}={vals} does not have {n} entries")
        return tuple(vals)

    # ---- builders ----------------------------------------------------------------------------
    def pointwise(self, out: int = 0) -> dict[Key, Maps]:
        """Elementwise with broadcasting: every input-dependent argument, right-aligned."""
        shape = self.out_shapes[out]
        assert shape is not None
        return {a.key: broadcast_maps(a.shape, shape) for a in self.inputs}

    def along(self, key: Key, dims: dict[int, Any], out: int = 0) -> dict[Key, Maps]:
        """One argument read through ``dims`` ({output dim: map}), every other output dim by
        :func:`default_map` (same ndim) ; other input-dependent arguments: read whole."""
        shape = self.out_shapes[out]
        a = self.arg(key)
        assert shape is not None
        result: dict[Key, Maps] = {}
        if a is not None:
            if len(a.shape) != len(shape):
                raise RuleError(f"argument {key} has {len(a.shape)} dims, output {len(shape)}")
            result[a.key] = tuple(dims[o] if o in dims else default_map(o, a.shape[o], shape[o])
                                  for o in range(len(shape)))
        for other in self.inputs:
            if other.key != key:
                result[other.key] = (None,) * len(shape)
        return result


def broadcast_maps(in_shape: Sequence[int], out_shape: Sequence[int]) -> Maps:
    """Per output dim: the right-aligned input dim (identity, or broadcast from size 1)."""
    lead = len(out_shape) - len(in_shape)
    if lead < 0:
        raise RuleError(f"cannot broadcast {list(in_shape)} to {list(out_shape)}")
    maps: list[Any] = []
    for o, n in enumerate(out_shape):
        d = o - lead
        if d < 0:
            maps.append(None)
        elif in_shape[d] == n:
            maps.append(same(d))
        elif in_shape[d] == 1:
            maps.append(bcast(d, n))
        else:
            raise RuleError(f"cannot broadcast {list(in_shape)} to {list(out_shape)}")
    return tuple(maps)


# ---- the table ---------------------------------------------------------------------------------

Rule = Callable[[OpCall], Any]


class RuleTable:
    """Rules keyed by the framework's own op identifiers; registering a key twice raises."""

    def __init__(self, framework: str) -> None:
        self.framework = framework
        self._rules: dict[Any, Rule] = {}

    def register(self, *ops: Any) -> Callable[[Rule], Rule]:
        def deco(fn: Rule) -> Rule:
            for op in ops:
                if op in self._rules:
                    raise SpecError(f"{op} already has the {self.framework} rule "
                                    f"{self._rules[op].__name__!r}; cannot add {fn.__name__!r}")
                self._rules[op] = fn
            return fn
        return deco

    def get(self, op: Any) -> Rule | None:
        return self._rules.get(op)

    def __contains__(self, op: Any) -> bool:
        return op in self._rules

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[tuple[Any, Rule]]:
        return iter(self._rules.items())

    @property
    def rule_functions(self) -> dict[str, Rule]:
        return {fn.__name__: fn for fn in self._rules.values()}


RULES = RuleTable("torch")


def aten_ops(*names: str) -> list[Any]:
    """Op overloads by name (``"conv2d.default"``; a bare packet name means every overload);
    names this torch build lacks are skipped."""
    import torch

    out = []
    for name in names:
        packet_name, _, overload = name.partition(".")
        packet = getattr(torch.ops.aten, packet_name, None)
        if packet is None:
            continue
        if overload:
            op = getattr(packet, overload, None)
            if op is not None:
                out.append(op)
        else:
            out.extend(getattr(packet, ov) for ov in packet.overloads()
                       if not ov.endswith("out") and "_out" not in ov)
    return list(dict.fromkeys(out))


def op_name(op: Any) -> str:
    """``aten.conv2d.default`` for an op overload; the name of any other callable."""
    name = str(op)
    return name if name.startswith("aten.") or "." in name else getattr(op, "__name__", name)


def user_rules(rules: dict | None) -> dict:
    """Normalize ``rules=`` keys: op overloads, overload packets or names."""
    table: dict = {}
    for key, fn in (rules or {}).items():
        if not callable(fn):
            raise SpecError(f"the rule for {key} is not callable")
        if isinstance(key, str):
            table[key.removeprefix("torch.ops.").replace("::", ".")] = fn
        else:
            table[key] = fn
    return table


def lookup(target: Any, user: dict) -> Rule | None:
    """The user's rule for an op (by overload, packet or name), else the built-in one."""
    for key in (target, getattr(target, "overloadpacket", None), str(target),
                str(getattr(target, "overloadpacket", ""))):
        if key is not None and key in user:
            return user[key]
    return RULES.get(target)
