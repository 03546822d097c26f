"""One run of a Python function under a core schedule, shared by every API
of the package, and the exception raised when its attempts run out."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Optional, Tuple, Type

from . import _backstop
from .testing import current_clock

__all__ = ["RetryExhaustedError", "exception_types", "require_sync", "run"]


def require_sync(func: Callable[..., Any]) -> None:
    """A ``TypeError`` for an ``async def`` function: its call only makes a
    coroutine, so retrying the call would retry nothing (and sleeping in it
    would block the event loop). Async functions are not supported yet."""
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{getattr(func, '__qualname__', func)!s} is an async function: backstop's Python decorators "
            "retry sync functions only (so far); retrying it would retry only the making of its coroutine"
        )


class RetryExhaustedError(Exception):
    """Every attempt failed: ``last_exception`` (also ``original_exception``)
    is the last one's exception, ``attempts`` how many were made. Raised
    ``from`` the last exception, so it is its ``__cause__`` too."""

    def __init__(self, last_exception: BaseException, attempts: int) -> None:
        super().__init__(f"failed after {attempts} attempts: {type(last_exception).__name__}: {last_exception}")
        self.last_exception = last_exception
        self.attempts = attempts

    @property
    def original_exception(self) -> BaseException:
        return self.last_exception


def exception_types(parameter: str, value: Any) -> Tuple[Type[BaseException], ...]:
    """``value`` (an exception class or an iterable of them) as a tuple, or a
    ``TypeError`` naming ``parameter``."""
    types = (value,) if isinstance(value, type) else tuple(value)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"{parameter} must hold exception classes; {t!r} is not one")
    return types


def run(
    schedule: _backstop.Schedule,
    retry_on: Tuple[Type[BaseException], ...],
    on_retry: Optional[Callable[[BaseException, int, float], Any]],
    func: Callable[..., Any],
    args: Tuple[Any, ...],
    kwargs: Optional[Mapping[str, Any]],
    name: Optional[str] = None,
    judge: Optional[Callable[[BaseException], Any]] = None,
) -> Any:
    """``func(*args, **kwargs)`` under ``schedule``, retrying exceptions of
    ``retry_on``, or as ``judge(exc)`` says (a bool, a verdict's name, or the
    seconds a server asked to wait), on the virtual clock of
    ``backstop.testing.virtual_time`` if one is set."""
    return _backstop.run(
        schedule,
        func,
        tuple(args),
        dict(kwargs) if kwargs else None,
        judge if judge is not None else (lambda exc: isinstance(exc, retry_on)),
        on_retry,
        RetryExhaustedError,
        name or getattr(func, "__name__", "operation"),
        current_clock(),
    )
