"""The ETL stage's ``RetryConfig`` (the specification's document 003):
attempts, and waits between ``min_wait_seconds`` and ``max_wait_seconds``
that grow exponentially with jitter, as tenacity's
``wait_random_exponential`` gave; the schedule is the core's (decorrelated
jitter: each wait uniform between the minimum and three times the last one,
capped at the maximum)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Tuple, Type

from . import _backstop
from ._checks import count, seconds
from ._run import exception_types

__all__ = ["DEFAULT_RETRY_CONFIG", "RetryConfig"]

_NAMES = {
    "max_attempts": "max_attempts",
    "backoff.base": "min_wait_seconds",
    "backoff.max_delay": "max_wait_seconds",
}


@dataclass(frozen=True)
class RetryConfig:
    """How an ETL stage retries: ``max_attempts`` in all (the first
    included), waits from ``min_wait_seconds`` growing to at most
    ``max_wait_seconds``, randomised; only ``retry_exceptions`` are retried."""

    max_attempts: int = 3
    min_wait_seconds: float = 2.0
    max_wait_seconds: float = 30.0
    retry_exceptions: Tuple[Type[BaseException], ...] = (Exception,)
    _schedule: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        count("max_attempts", self.max_attempts, "retry policy")
        for name in ("min_wait_seconds", "max_wait_seconds"):
            seconds(name, getattr(self, name))
        object.__setattr__(self, "retry_exceptions", exception_types("retry_exceptions", self.retry_exceptions))
        schedule = _backstop.Schedule(
            self.max_attempts,
            float(self.min_wait_seconds),
            float(self.max_wait_seconds),
            2.0,
            "decorrelated",
            _NAMES,
        )
        object.__setattr__(self, "_schedule", schedule)


DEFAULT_RETRY_CONFIG = RetryConfig()
"""3 attempts, waits between 2 and 30 seconds, every ``Exception`` retried."""
