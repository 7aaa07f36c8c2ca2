"""The library's errors: one base class, each message says what, where and what next."""

from __future__ import annotations


class ErfError(Exception):
    """Base class of every error erfsuite raises on purpose."""


class SpecError(ErfError, ValueError):
    """A graph, layer spec or argument is malformed (names the node and field)."""


class GraphError(SpecError):
    """The graph is not a valid DAG from the input to the output."""


class UnsupportedOpError(ErfError):
    """Ops without a receptive-field rule; never treated as identity."""


class AlignmentError(ErfError):
    """Raised with ``strict=True`` when paths into a merge disagree (paper eq. 12, 13)."""


class CaptureError(ErfError):
    """A model could not be traced / exported at the given shapes."""


class ResourceError(ErfError):
    """Work that would not fit in memory, refused before anything is allocated."""
