"""Forward hooks that are always removed, whatever the forward pass raises."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from torch import nn


@contextlib.contextmanager
def forward_hooks(modules: Iterable[nn.Module], hook: Callable) -> Iterator[None]:
    """``hook`` registered as a forward hook on each of ``modules`` for the ``with`` block only."""
    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
