"""The zero-dependency ``RetryPolicy`` API of the specification (document 004):
``RetryPolicy``, ``with_retry``, ``retry_call``, ``create_batch_retry_wrapper``
and ``RetryExhaustedError``, run by backstop's core.

The delays, the jitter (±25 %), the validation and its messages and the run
loop are the core's; this module turns Python's parameters into a core
schedule and says which exceptions are retried (``retry_on_exceptions``).
"""

from __future__ import annotations

import functools
import random
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, Type, TypeVar, Union

from . import _backstop
from .testing import current_clock

__all__ = ["RetryExhaustedError", "RetryPolicy", "create_batch_retry_wrapper", "retry_call", "with_retry"]

F = TypeVar("F", bound=Callable[..., Any])
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


def _exception_types(value: Any) -> Tuple[Type[BaseException], ...]:
    types = (value,) if isinstance(value, type) else tuple(value)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"retry_on_exceptions must hold exception classes; {t!r} is not one")
    return types


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
        if isinstance(max_retries, bool) or not isinstance(max_retries, int):
            raise TypeError(f"max_retries must be an int, not {type(max_retries).__name__}")
        if max_retries < 0:
            raise ValueError(f"invalid retry policy: max_retries is {max_retries}; allowed: 0 or more")
        for name, value in (("initial_delay", initial_delay), ("max_delay", max_delay), ("exponential_base", exponential_base)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
        if on_retry is not None and not callable(on_retry):
            raise TypeError("on_retry must be callable: on_retry(exception, attempt, delay)")
        self.max_retries = max_retries
        self.initial_delay = float(initial_delay)
        self.max_delay = float(max_delay)
        self.exponential_base = float(exponential_base)
        self.jitter = bool(jitter)
        self.retry_on_exceptions = _exception_types(retry_on_exceptions)
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
        types = self.retry_on_exceptions
        return _backstop.run(
            self._schedule,
            func,
            tuple(args),
            dict(kwargs) if kwargs else None,
            lambda exc: isinstance(exc, types),
            self.on_retry,
            RetryExhaustedError,
            getattr(func, "__name__", "operation"),
            current_clock(),
        )


def _policy_of(policy: Optional[RetryPolicy], params: Dict[str, Any]) -> RetryPolicy:
    if policy is not None and params:
        raise TypeError(f"give either policy= or its parameters ({', '.join(params)}), not both")
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, not {type(policy).__name__}")
    return policy if policy is not None else RetryPolicy(**params)


def with_retry(func: Optional[F] = None, *, policy: Optional[RetryPolicy] = None, **params: Any) -> Any:
    """Retries the decorated function under ``policy`` (or a ``RetryPolicy``
    made of ``params``); with or without parentheses::

        @with_retry
        def a(): ...

        @with_retry(max_retries=5, initial_delay=0.5)
        def b(): ...

    An exception the policy does not retry is raised as itself; when retries
    run out, ``RetryExhaustedError`` is raised from the last exception."""
    chosen = _policy_of(policy, params)

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return chosen._call(f, args, kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def retry_call(
    func: Callable[..., Any],
    args: Tuple[Any, ...] = (),
    kwargs: Optional[Mapping[str, Any]] = None,
    policy: Optional[RetryPolicy] = None,
    **params: Any,
) -> Any:
    """Calls ``func(*args, **kwargs)`` under ``policy`` (or a ``RetryPolicy``
    made of ``params``), without a decorator."""
    return _policy_of(policy, params)._call(func, args, kwargs)


def create_batch_retry_wrapper(
    func: Callable[[Any], Any], policy: Optional[RetryPolicy] = None, fail_fast: bool = True
) -> Callable[[Any], Any]:
    """A one-argument wrapper of ``func`` for batches (``[wrapper(x) for x in
    items]``): each item retried under ``policy``. With ``fail_fast=False`` an
    item whose retries run out returns its ``RetryExhaustedError`` (or the
    exception not retried) instead of raising it, so the batch goes on."""
    chosen = policy if policy is not None else RetryPolicy()

    @functools.wraps(func)
    def wrapper(item: Any) -> Any:
        if fail_fast:
            return chosen._call(func, (item,), None)
        try:
            return chosen._call(func, (item,), None)
        except Exception as exc:  # noqa: BLE001 - the batch keeps the failure as its result
            return exc

    return wrapper
