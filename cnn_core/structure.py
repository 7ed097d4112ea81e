"""What depends only on a model's structure, computed once per model and structure.

Tracing a model, its layer listing and its receptive fields depend on the module tree and each
module's configuration (kernel, stride, padding, ...), never on the weights; they are asked for
again and again by every check of one model. :func:`cached` keeps them per model object, keyed
by the model's :func:`structure_key`, so that a module whose stride or padding is changed
afterwards (a deliberate break) is computed afresh, and the unchanged model is not.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar

from torch import nn

T = TypeVar("T")

_RESULTS: weakref.WeakKeyDictionary[nn.Module, dict[Hashable, object]] = weakref.WeakKeyDictionary()


def structure_key(model: nn.Module) -> tuple:
    """Every module's path, class, configuration (its public attributes, ``training`` included:
    a traced graph keeps a functional dropout's mode) and any forward replaced on the
    instance: equal keys, equal structure."""
    return tuple(
        (path, type(module), tuple((name, repr(value)) for name, value in sorted(vars(module).items())
                                   if not name.startswith("_")),
         vars(module).get("forward"))
        for path, module in model.named_modules()
    )


def cached(model: nn.Module, what: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, remembered for ``model`` under ``what`` (the question, including whatever
    else the answer depends on) and the model's current structure."""
    key = (what, structure_key(model))
    results = _RESULTS.setdefault(model, {})
    if key not in results:
        results[key] = compute()
    return results[key]
