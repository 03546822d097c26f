"""The pipeline's circuit breaker (the specification's documents 000 and 002):
``CircuitBreaker``, ``CircuitBreakerConfiguration``, ``CircuitState`` and
``CircuitOpenException``, on the core's breaker (its state machine, its
half-open probe limit across threads, its state-change lines)."""

from __future__ import annotations

import contextvars
import enum
import functools
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Optional, Tuple, Type, TypeVar

from . import _backstop
from ._callables import is_async
from ._checks import count, seconds
from ._fleet import Fleet, fleet_handle
from .testing import current_clock

__all__ = ["CircuitBreaker", "CircuitBreakerConfiguration", "CircuitOpenException", "CircuitState"]

#: The permits of the ``with breaker:`` blocks open in this thread or task,
#: innermost last (a context variable: each thread and asyncio task has its own).
_held: contextvars.ContextVar[Tuple[Tuple["CircuitBreaker", Any], ...]] = contextvars.ContextVar(
    "backstop_breaker_permits", default=()
)


def _report(permit: Any, exc: BaseException) -> None:
    """An ``Exception`` is a failure; a cancelled or interrupted call
    (``asyncio.CancelledError``, ``KeyboardInterrupt``) counts nothing."""
    if isinstance(exc, Exception):
        permit.failure()
    else:
        permit.release()

F = TypeVar("F", bound=Callable[..., Any])


class CircuitState(enum.Enum):
    """A breaker's state."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitOpenException(Exception):
    """A call refused because the circuit ``name`` is open (``state``)."""

    def __init__(self, name: str, state: CircuitState = CircuitState.OPEN) -> None:
        if isinstance(state, str):
            state = CircuitState(state)
        super().__init__(f"circuit {name} is {state.value}: the call was not made")
        self.name = name
        self.state = state


@dataclass(frozen=True)
class CircuitBreakerConfiguration:
    """``failure_threshold`` failures in a row open the circuit; after
    ``recovery_timeout_seconds`` a probe goes through, and
    ``success_threshold`` successful probes close it."""

    failure_threshold: int = 5
    recovery_timeout_seconds: float = 30.0
    success_threshold: int = 1

    def __post_init__(self) -> None:
        for name in ("failure_threshold", "success_threshold"):
            count(name, getattr(self, name), "circuit breaker")
        seconds("recovery_timeout_seconds", self.recovery_timeout_seconds)


class CircuitBreaker:
    """A circuit breaker named ``name`` (in its log lines and exceptions)::

        upload_circuit = CircuitBreaker("s3_upload", config=CircuitBreakerConfiguration(failure_threshold=5))
        if upload_circuit.allow_request():
            ...  # then upload_circuit.record_success() or .record_failure()

    Also a decorator (``@upload_circuit``, on sync and ``async def``
    functions) and a context manager (``with upload_circuit:``): an
    ``Exception`` in the call counts as a failure, a cancelled call
    (``asyncio.CancelledError``, ``KeyboardInterrupt``) as nothing, and an
    open circuit raises ``CircuitOpenException``. Thread-safe. Made inside
    ``backstop.testing.virtual_time()``, its recovery timeout runs in virtual
    time. With ``fleet`` (a ``Fleet``), every process's breaker of this name
    is one breaker: a trip anywhere opens it everywhere, and one probe goes
    out for the whole fleet."""

    def __init__(
        self, name: str, config: Optional[CircuitBreakerConfiguration] = None, *, fleet: Optional[Fleet] = None
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        self.config = config if config is not None else CircuitBreakerConfiguration()
        if not isinstance(self.config, CircuitBreakerConfiguration):
            raise TypeError(f"config must be a CircuitBreakerConfiguration, not {type(self.config).__name__}")
        self._clock = current_clock()
        self._breaker = _backstop.Breaker(
            name,
            self.config.failure_threshold,
            float(self.config.recovery_timeout_seconds),
            self.config.success_threshold,
            self._clock,
            fleet_handle(fleet),
        )

    @property
    def name(self) -> str:
        return self._breaker.name

    @property
    def state(self) -> CircuitState:
        """The state now (an open circuit whose recovery timeout has passed is half-open)."""
        return CircuitState(self._breaker.state)

    def allow_request(self) -> bool:
        """Whether a call may go now; if so, report it with ``record_success()``
        or ``record_failure()``."""
        return self._breaker.allow_request()

    def record_success(self) -> None:
        self._breaker.record_success()

    def record_failure(self) -> None:
        self._breaker.record_failure()

    def isolate(self) -> None:
        """Holds the circuit open until ``reset()``."""
        self._breaker.isolate()

    def reset(self) -> None:
        """Closes the circuit and forgets its counts."""
        self._breaker.reset()

    def _permit(self) -> _backstop.Permit:
        """A permit for one guarded call, or ``CircuitOpenException``."""
        permit = self._breaker.acquire()
        if permit is None:
            raise CircuitOpenException(self.name, self.state)
        return permit

    def __call__(self, func: F) -> F:
        if is_async(func):

            @functools.wraps(func)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                permit = self._permit()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    _report(permit, exc)
                    raise
                permit.success()
                return result

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            permit = self._permit()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                _report(permit, exc)
                raise
            permit.success()
            return result

        return guarded  # type: ignore[return-value]

    def __enter__(self) -> "CircuitBreaker":
        permit = self._permit()
        _held.set(_held.get() + ((self, permit),))
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        held = _held.get()
        # This block's permit: the innermost one of this breaker held in this
        # thread or task (blocks of other threads and tasks hold their own).
        at = max(i for i, (breaker, _) in enumerate(held) if breaker is self)
        _held.set(held[:at] + held[at + 1 :])
        permit = held[at][1]
        if exc is None:
            permit.success()
        else:
            _report(permit, exc)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.name})"
