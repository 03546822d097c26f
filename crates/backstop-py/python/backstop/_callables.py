"""What kind of callable a user gave: whether calling it makes a coroutine
(the decorators, ``retry_call`` and the breaker's ``call`` run those on
the event loop, and everything else on the calling thread)."""

from __future__ import annotations

import inspect
from typing import Any, Callable

__all__ = ["is_async"]


def is_async(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` makes a coroutine: an ``async def``
    function, a bound method or ``functools.partial`` of one, or an object
    whose ``__call__`` is one."""
    iscoroutinefunction = inspect.iscoroutinefunction
    if iscoroutinefunction(func):
        return True
    inner = getattr(func, "func", func)  # a functools.partial's function
    return iscoroutinefunction(inner) or (
        not inspect.isroutine(inner) and iscoroutinefunction(getattr(inner, "__call__", None))
    )
