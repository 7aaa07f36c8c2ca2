"""erfsuite's analytic side: receptive fields from a model's computation graph (no torch/jax).

``analyze`` accepts a :class:`Graph`, a layer-spec file (JSON/TOML), a ``torch.nn.Module`` or
a JAX callable; frameworks load only when the target is one of theirs.
"""

from .analysis import Analysis, NodeRF, analyze_graph
from .api import analyze, size_dependence
from .errors import (
                     AlignmentError,
                     CaptureError,
                     ErfError,
                     GraphError,
                     SpecError,
                     UnsupportedOpError,
)
from .geometry import Window, chain_closed_form, chain_recurrence, same_pad
from .graph import AxisMap, Edge, Graph, Node
from .propagate import AxisRF
from .regions import Boxes

__all__ = ["Analysis", "AlignmentError", "AxisMap", "AxisRF", "Boxes", "CaptureError", "Edge",
           "ErfError", "Graph", "GraphError", "Node", "NodeRF", "SpecError",
           "UnsupportedOpError", "Window", "analyze", "analyze_graph", "chain_closed_form",
           "chain_recurrence", "same_pad", "size_dependence"]
__version__ = "0.1.0"
