"""The zero-dependency ``RetryPolicy`` of the specification (document 004) and
its ``create_batch_retry_wrapper``, run by backstop's core (``with_retry`` and
``retry_call``, shared with document 003, are in ``_decorators``).

The delays, the jitter (±25 %), the validation and its messages and the run
loop are the core's; this module turns Python's parameters into a core
schedule and says which exceptions are retried (``retry_on_exceptions``).
"""

from __future__ import annotations

import functools
import random
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple, Type, Union

from . import _backstop
from ._callables import is_async
from ._checks import U32_MAX, count, number, seconds
from ._run import RetryExhaustedError, exception_types, run

__all__ = ["RetryExhaustedError", "RetryPolicy", "create_batch_retry_wrapper"]

OnRetry = Callable[[BaseException, int, float], Any]

# The core's field names, as this API calls its parameters (for error texts).
_NAMES = {
    "max_attempts": "max_retries + 1",
    "backoff.base": "initial_delay",
    "backoff.max_delay": "max_delay",
    "backoff.factor": "exponential_base",
    "jitter": "jitter",
}

# Jitter: ±25 % of the delay, the core's `proportional:0.25`.
_JITTER = "proportional:0.25"




class RetryPolicy:
    """How to retry: up to ``max_retries`` retries after the first call,
    waiting ``initial_delay`` seconds, then ``exponential_base`` times longer
    each retry up to ``max_delay``, each wait varied by ±25 % when ``jitter``;
    only exceptions of ``retry_on_exceptions`` are retried, and ``on_retry(exc,
    attempt, delay)`` is called before each wait."""

    def __init__(
        self,
        max_retries: int = 3,
        initial_delay: float = 0.1,
        max_delay: float = 60.0,
        exponential_base: float = 2.0,
        jitter: bool = True,
        retry_on_exceptions: Union[Type[BaseException], Iterable[Type[BaseException]]] = (Exception,),
        on_retry: Optional[OnRetry] = None,
    ) -> None:
        count("max_retries", max_retries, "retry policy", U32_MAX - 1)  # one attempt more than retries
        for name, value in (("initial_delay", initial_delay), ("max_delay", max_delay)):
            seconds(name, value)
        number("exponential_base", exponential_base)
        if on_retry is not None and not callable(on_retry):
            raise TypeError("on_retry must be callable: on_retry(exception, attempt, delay)")
        self.max_retries = max_retries
        self.initial_delay = float(initial_delay)
        self.max_delay = float(max_delay)
        self.exponential_base = float(exponential_base)
        self.jitter = bool(jitter)
        self.retry_on_exceptions = exception_types("retry_on_exceptions", retry_on_exceptions)
        self.on_retry = on_retry
        self._schedule = _backstop.Schedule(
            max_retries + 1,
            self.initial_delay,
            self.max_delay,
            self.exponential_base,
            _JITTER if self.jitter else "none",
            _NAMES,
        )

    def calculate_delay(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (from 1), in seconds:
        ``min(initial_delay * exponential_base ** (attempt - 1), max_delay)``,
        ±25 % with jitter."""
        return self._schedule.delay(attempt, random.random())

    def should_retry(self, exception: BaseException, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` (from 1) with ``exception`` is retried."""
        return attempt <= self.max_retries and isinstance(exception, self.retry_on_exceptions)

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_retries={self.max_retries}, initial_delay={self.initial_delay}, "
            f"max_delay={self.max_delay}, exponential_base={self.exponential_base}, jitter={self.jitter}, "
            f"retry_on_exceptions={self.retry_on_exceptions!r})"
        )

    def _call(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Optional[Mapping[str, Any]]) -> Any:
        return run(self._schedule, self.retry_on_exceptions, self.on_retry, func, args, kwargs)


def create_batch_retry_wrapper(
    func: Callable[[Any], Any], policy: Optional[RetryPolicy] = None, fail_fast: bool = True
) -> Callable[[Any], Any]:
    """A one-argument wrapper of ``func`` for batches (``[wrapper(x) for x in
    items]``): each item retried under ``policy``. With ``fail_fast=False`` an
    item whose retries run out returns its ``RetryExhaustedError`` (or the
    exception not retried) instead of raising it, so the batch goes on."""
    if not callable(func):
        raise TypeError(f"create_batch_retry_wrapper needs a function, not {type(func).__name__}")
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, not {type(policy).__name__}")
    chosen = policy if policy is not None else RetryPolicy()
    if is_async(func):

        @functools.wraps(func)
        async def wrapper_async(item: Any) -> Any:
            if fail_fast:
                return await chosen._call(func, (item,), None)
            try:
                return await chosen._call(func, (item,), None)
            except Exception as exc:  # noqa: BLE001 - the batch keeps the failure as its result
                return exc

        return wrapper_async

    @functools.wraps(func)
    def wrapper(item: Any) -> Any:
        if fail_fast:
            return chosen._call(func, (item,), None)
        try:
            return chosen._call(func, (item,), None)
        except Exception as exc:  # noqa: BLE001 - the batch keeps the failure as its result
            return exc

    return wrapper
