"""erfsuite's measurement side: effective receptive fields by unit-impulse backprop through
PyTorch or JAX models, held against the exact analytic regions of :mod:`analytic`.

``measure`` gives an :class:`ERFResult` (per-unit gradient maps, their mean, the units' exact
regions, metrics); ``check`` gives a :class:`CheckResult` (containment and tightness). Neither
torch nor JAX is imported until a model of theirs is measured.
"""

from . import init, metrics
from .check import CheckResult, Violation, check
from .impulses import MeasureError, select_units
from .measure import ERFResult, measure

__all__ = ["CheckResult", "ERFResult", "MeasureError", "Violation", "check", "init", "measure",
           "metrics", "select_units"]
