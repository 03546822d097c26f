"""The pipeline's circuit breaker (the specification's documents 000 and 002):
``CircuitBreaker``, ``CircuitBreakerConfiguration``, ``CircuitState`` and
``CircuitOpenException``, on the core's breaker (its state machine, its
half-open probe limit across threads, its state-change lines)."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Optional, Type, TypeVar

from . import _backstop
from ._fleet import Fleet, fleet_handle
from ._run import is_async
from .testing import current_clock

__all__ = ["CircuitBreaker", "CircuitBreakerConfiguration", "CircuitOpenException", "CircuitState"]

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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        value = self.recovery_timeout_seconds
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"recovery_timeout_seconds must be a number of seconds, not {type(value).__name__}")


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
        self._breaker = _backstop.Breaker(
            name,
            self.config.failure_threshold,
            float(self.config.recovery_timeout_seconds),
            self.config.success_threshold,
            current_clock(),
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

    def __call__(self, func: F) -> F:
        if is_async(func):

            @functools.wraps(func)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    def __enter__(self) -> "CircuitBreaker":
        if not self.allow_request():
            raise CircuitOpenException(self.name, self.state)
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if exc_type is None:
            self.record_success()
        elif issubclass(exc_type, Exception):
            self.record_failure()
        else:
            # Cancelled (asyncio.CancelledError), interrupted or exiting: the
            # call was abandoned, not failed; its permit counts nothing.
            self._breaker.release()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.name})"
