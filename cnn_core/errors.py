"""Typed errors raised at the boundary of cnn_core.

Every error says which input was wrong and what to do about it, so that a user
never has to read a traceback from deep inside PIL or torch.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class CnnCoreError(Exception):
    """Base class of every error cnn_core raises on purpose."""


class ImageError(CnnCoreError, ValueError):
    """An image source could not be turned into an RGB picture."""

    def __init__(self, source: object, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"image {describe_source(source)}: {problem}")


class InputError(CnnCoreError, ValueError):
    """A tensor, box, window or option passed to cnn_core is unusable."""


class WeightsError(CnnCoreError, ValueError):
    """Weights could not be found or do not fit the model."""


class ReceptiveFieldError(CnnCoreError, ValueError):
    """A receptive field cannot be computed for this layer or operation."""


class NoSupportTwin(ReceptiveFieldError):
    """The empirical receptive field has no support-preserving twin for some layer of the model
    (attention, upsampling, a learned tensor used as a weight): that layer's field is not measured."""


class _NotFound(CnnCoreError, LookupError):
    kind = "name"

    def __init__(self, name: str, known: Iterable[str], hint: str = ""):
        self.name = name
        self.suggestions = difflib.get_close_matches(name, list(known), n=5, cutoff=0.5)
        message = f"unknown {self.kind} {name!r}"
        if self.suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would repr() the message
        return self.args[0]


class ModelNotFound(_NotFound):
    """No torchvision (or cnn_core) model has this name."""

    kind = "model"


class LayerNotFound(_NotFound):
    """The model has no layer with this path or alias."""

    kind = "layer"


class AmbiguousLayer(CnnCoreError, LookupError):
    """A module runs more than once per forward; a call index must be given."""

    def __init__(self, name: str, calls: int):
        self.name = name
        self.calls = calls
        options = ", ".join(f"'{name}@{k}'" for k in range(calls))
        super().__init__(
            f"layer {name!r} runs {calls} times in one forward pass; "
            f"ask for one call explicitly: {options}"
        )

    def __str__(self) -> str:
        return self.args[0]


def describe_source(source: object) -> str:
    """A short, human-readable name of an image source for error messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if hasattr(source, "shape") and hasattr(source, "dtype"):
        return f"<array shape={tuple(source.shape)} dtype={source.dtype}>"
    if hasattr(source, "mode") and hasattr(source, "size"):
        return f"<PIL image mode={source.mode} size={source.size}>"
    text = repr(str(source))
    return text if len(text) <= 200 else text[:197] + "...'"
