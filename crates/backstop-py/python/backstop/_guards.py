"""The guards a run can take besides its schedule, each the core's own:
``RetryBudget`` (retries draw from it; when spent, runs stop retrying) and
``Pacer`` (spaces calls at the rate the server accepts, learnt from its
throttling), with ``CircuitBreaker`` (``backstop._breaker``).

Give them to a decorator::

    budget = RetryBudget.token_bucket("s3")          # the AWS SDKs' quota: 500 tokens, 5 a retry
    breaker = CircuitBreaker("s3")

    @with_s3_retry(breaker=breaker, budget=budget)
    def upload_to_s3(key, data): ...

Share one of each between the calls to one downstream (one bucket, one
API): that is what lets them see its health. Made inside
``backstop.testing.virtual_time()``, they run in virtual time.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _backstop
from ._checks import optional_count, optional_number
from ._fleet import Fleet, fleet_handle
from .testing import current_clock

__all__ = ["ANY_CLOCK", "Pacer", "RetryBudget", "clock_rule", "clock_mismatch", "run_guards"]

#: ``clock_rule``'s answer when the guards run under any clock.
ANY_CLOCK = object()


class RetryBudget:
    """A retry budget shared by every run given it (thread-safe). Make one
    with ``RetryBudget.token_bucket(...)`` (the AWS SDKs' quota, the
    default: ``RetryBudget()``) or ``RetryBudget.ratio(...)`` (retries at
    most a share of the requests). When it is spent, a failing run stops
    retrying and raises ``RetryExhaustedError`` at once."""

    def __init__(self, name: str = "retry_budget", *, fleet: Optional[Fleet] = None) -> None:
        self._clock = current_clock()
        self._budget = _backstop.Budget.token_bucket(_name(name), clock=self._clock, fleet=fleet_handle(fleet))

    @classmethod
    def token_bucket(
        cls,
        name: str = "retry_budget",
        *,
        capacity: Optional[int] = None,
        retry_cost: Optional[int] = None,
        timeout_cost: Optional[int] = None,
        refill_per_sec: Optional[float] = None,
        fleet: Optional[Fleet] = None,
    ) -> "RetryBudget":
        """``capacity`` tokens (default 500); a retry costs ``retry_cost``
        (5), one after a timeout ``timeout_cost`` (10); a success gives 1
        back (or its retry's cost); ``refill_per_sec`` tokens come back each
        second (default 0). With ``fleet``, one bucket for every process's
        budget of this name."""
        budget = cls.__new__(cls)
        budget._clock = current_clock()
        what = "retry budget"
        budget._budget = _backstop.Budget.token_bucket(
            _name(name),
            optional_count("capacity", capacity, what),
            optional_count("retry_cost", retry_cost, what),
            optional_count("timeout_cost", timeout_cost, what),
            optional_number("refill_per_sec", refill_per_sec),
            budget._clock,
            fleet_handle(fleet),
        )
        return budget

    @classmethod
    def ratio(
        cls,
        name: str = "retry_budget",
        *,
        ratio: Optional[float] = None,
        window: Optional[float] = None,
        min_per_sec: Optional[float] = None,
        fleet: Optional[Fleet] = None,
    ) -> "RetryBudget":
        """Retries at most ``ratio`` (default 0.2) of the requests of the
        last ``window`` seconds (10), plus ``min_per_sec`` each second. With
        ``fleet``, the rule holds over the requests and retries of every
        process's budget of this name, with one ``min_per_sec`` for them
        all."""
        budget = cls.__new__(cls)
        budget._clock = current_clock()
        budget._budget = _backstop.Budget.ratio(
            _name(name),
            optional_number("ratio", ratio),
            optional_number("window", window),
            optional_number("min_per_sec", min_per_sec),
            budget._clock,
            fleet_handle(fleet),
        )
        return budget

    @property
    def name(self) -> str:
        return self._budget.name

    @property
    def level(self) -> float:
        """What is left: tokens (a token bucket) or retries (a ratio budget)."""
        return self._budget.level

    @property
    def denied(self) -> int:
        """Retries refused so far."""
        return self._budget.denied

    def __repr__(self) -> str:
        return f"RetryBudget({self.name!r}, level={self.level:g})"


class Pacer:
    """Spaces the calls of every run given it at the rate the server
    accepts (the AWS SDKs' adaptive mode): not pacing until the first
    throttling answer (or from ``initial_rate`` calls per second), then
    halving at throttling and growing back (CUBIC) between ``min_rate``
    (0.5/s) and ``max_rate`` (100 000/s); ``burst`` calls (10) may go at once
    after a quiet spell. A run waits for its slot before each attempt. With
    ``fleet``, every process's pacer of this name learns one rate, and they
    send at it together."""

    def __init__(
        self,
        name: str = "pacer",
        *,
        initial_rate: Optional[float] = None,
        min_rate: Optional[float] = None,
        max_rate: Optional[float] = None,
        burst: Optional[int] = None,
        fleet: Optional[Fleet] = None,
    ) -> None:
        self._clock = current_clock()
        self._pacer = _backstop.Pace(
            _name(name),
            optional_number("initial_rate", initial_rate),
            optional_number("min_rate", min_rate),
            optional_number("max_rate", max_rate),
            optional_count("burst", burst, "pacer"),
            self._clock,
            fleet_handle(fleet),
        )

    @property
    def name(self) -> str:
        return self._pacer.name

    @property
    def rate(self) -> Optional[float]:
        """Calls per second it paces at now, or ``None`` while not pacing."""
        return self._pacer.rate

    def __repr__(self) -> str:
        return f"Pacer({self.name!r}, rate={self.rate!r})"


def _name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")
    return name


def run_guards(breaker: Any = None, budget: Any = None, pacer: Any = None) -> Optional[_backstop.RunGuards]:
    """The core's guards for a run, or ``None`` when none is given; a
    ``TypeError`` names a parameter given the wrong kind of object."""
    from ._breaker import CircuitBreaker

    for parameter, value, kind in (("breaker", breaker, CircuitBreaker), ("budget", budget, RetryBudget), ("pacer", pacer, Pacer)):
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{parameter} must be a {kind.__name__}, not {type(value).__name__}")
    if breaker is None and budget is None and pacer is None:
        return None
    return _backstop.RunGuards(
        breaker._breaker if breaker is not None else None,
        budget._budget if budget is not None else None,
        pacer._pacer if pacer is not None else None,
    )


def clock_rule(breaker: Any = None, budget: Any = None, pacer: Any = None) -> Any:
    """The clock runs with these guards must be on: the virtual clock a
    guard was made on (its time stands still outside that block), ``None``
    (real time) for a ``Pacer`` made in real time (a run in virtual time
    could never reach its slots), or ``ANY_CLOCK``."""
    made = [g for g in (breaker, budget, pacer) if g is not None]
    virtual = {id(g._clock): g for g in made if g._clock is not None}
    if len(virtual) > 1:
        raise ValueError("the guards were made in different virtual_time() blocks: make them in one")
    if virtual:
        return next(iter(virtual.values()))._clock
    return None if pacer is not None else ANY_CLOCK


def clock_mismatch(expected: Any, current: Any) -> RuntimeError:
    """The error of a run on ``current`` whose guards need ``expected``."""
    if expected is None:
        return RuntimeError(
            "backstop: a Pacer made outside virtual_time() cannot pace a run inside it (its slots come in real "
            "time, which virtual time never reaches): make the Pacer inside the virtual_time() block"
        )
    return RuntimeError(
        "backstop: a guard made inside a virtual_time() block is used outside it, where its clock stands still "
        "(an open circuit would never close, a pacer's slot never come): make the guards where they are used"
    )
