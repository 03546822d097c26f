"""One run of a Python function under a core schedule, shared by every API
of the package: sync functions run in the core's loop (``_backstop.run``);
``async def`` functions are awaited here, each step asked of the core
(``_backstop.AsyncRun``), so the event loop is never blocked. Also the
exception raised when a run's attempts run out."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Awaitable, Callable, Mapping, Optional, Tuple, Type, TypeVar

from . import _backstop, testing
from ._callables import is_async
from ._guards import ANY_CLOCK, clock_mismatch

__all__ = ["RetryExhaustedError", "exception_types", "retrying", "run", "run_async"]

F = TypeVar("F", bound=Callable[..., Any])

#: A classifier: ``judge(exc)`` answers a bool, a verdict's name
#: (``"retry"``, ``"timeout"``, ``"throttled"``, ``"fail"``) or the seconds a
#: server asked to wait.
Judge = Callable[[BaseException], Any]


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


def _judge(retry_on: Tuple[Type[BaseException], ...], judge: Optional[Judge]) -> Judge:
    return judge if judge is not None else (lambda exc: isinstance(exc, retry_on))


def _name(func: Callable[..., Any], name: Optional[str]) -> str:
    return name or getattr(func, "__name__", None) or "operation"


def run(
    schedule: _backstop.Schedule,
    retry_on: Tuple[Type[BaseException], ...],
    on_retry: Optional[Callable[[BaseException, int, float], Any]],
    func: Callable[..., Any],
    args: Tuple[Any, ...],
    kwargs: Optional[Mapping[str, Any]],
    name: Optional[str] = None,
    judge: Optional[Judge] = None,
    guards: Optional[_backstop.RunGuards] = None,
) -> Any:
    """``func(*args, **kwargs)`` under ``schedule``, retrying exceptions of
    ``retry_on``, or as ``judge(exc)`` says, asking ``guards``, on the
    virtual clock of ``backstop.testing.virtual_time`` if one is set. For an
    async ``func``, the coroutine that does so (to be awaited)."""
    if is_async(func):
        return run_async(schedule, retry_on, on_retry, func, args, kwargs, name, judge, guards)
    return _backstop.run(
        schedule, func, tuple(args), dict(kwargs) if kwargs else None, _judge(retry_on, judge), on_retry,
        _name(func, name), testing._current, guards,
    )


async def run_async(
    schedule: _backstop.Schedule,
    retry_on: Tuple[Type[BaseException], ...],
    on_retry: Optional[Callable[[BaseException, int, float], Any]],
    func: Callable[..., Awaitable[Any]],
    args: Tuple[Any, ...],
    kwargs: Optional[Mapping[str, Any]],
    name: Optional[str] = None,
    judge: Optional[Judge] = None,
    guards: Optional[_backstop.RunGuards] = None,
) -> Any:
    """``await func(*args, **kwargs)`` under ``schedule``, as ``run`` does,
    sleeping with ``asyncio.sleep`` (in virtual time under ``virtual_time``,
    each sleep still yielding to the loop). Cancelling the task cancels the
    run, wherever it is: the attempt in flight or the sleep."""
    clock = testing._current
    steps = _backstop.AsyncRun(schedule, _judge(retry_on, judge), on_retry, _name(func, name), clock, guards)
    kwargs = kwargs or {}
    try:
        wait = steps.start()
        while True:
            while wait is not None:
                if clock is None:
                    await asyncio.sleep(wait)
                else:
                    clock.sleep(wait)
                    await asyncio.sleep(0)
                wait = steps.resume()
            try:
                result = await func(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the core judges it; BaseExceptions (cancellation) end the run
                wait = steps.failed(exc)  # raises when the run gives up
                continue
            steps.succeeded()
            return result
    finally:
        steps.close()  # a cancelled run gives back what it holds


def retrying(
    func: F,
    schedule: _backstop.Schedule,
    retry_on: Tuple[Type[BaseException], ...] = (),
    on_retry: Optional[Callable[[BaseException, int, float], Any]] = None,
    judge: Optional[Judge] = None,
    make_attempt: Optional[Callable[[], Callable[..., Any]]] = None,
    guards: Optional[_backstop.RunGuards] = None,
    clock_rule: Any = ANY_CLOCK,
) -> F:
    """``func``'s retrying wrapper (``functools.wraps``; async for an async
    ``func``): each call runs ``func`` under ``schedule`` and ``guards``, as
    ``run`` says; or, with ``make_attempt``, the function it makes for that
    call (one that logs around ``func``, say). ``clock_rule`` (see
    ``_guards.clock_rule``) is the clock the guards need a call to run on."""
    if not callable(func):
        raise TypeError(f"the decorator needs a function to retry, not {type(func).__name__}")
    name = _name(func, None)
    judged = _judge(retry_on, judge)

    def target() -> Callable[..., Any]:
        return func if make_attempt is None else make_attempt()

    def clock() -> Any:
        current = testing._current
        if clock_rule is not ANY_CLOCK and current is not clock_rule:
            raise clock_mismatch(clock_rule, current)
        return current

    if is_async(func):

        @functools.wraps(func)
        async def retried_async(*args: Any, **kwargs: Any) -> Any:
            clock()
            return await run_async(schedule, retry_on, on_retry, target(), args, kwargs, name, judged, guards)

        return retried_async  # type: ignore[return-value]
    call = _backstop.run
    if make_attempt is None and clock_rule is ANY_CLOCK:
        # The hot path: one Python frame, then the core.

        @functools.wraps(func)
        def retried(*args: Any, **kwargs: Any) -> Any:
            return call(schedule, func, args, kwargs or None, judged, on_retry, name, testing._current, guards)

    else:

        @functools.wraps(func)
        def retried(*args: Any, **kwargs: Any) -> Any:
            return call(schedule, target(), args, kwargs or None, judged, on_retry, name, clock(), guards)

    return retried  # type: ignore[return-value]
