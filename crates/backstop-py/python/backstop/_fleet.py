"""Guards shared by a fleet of worker processes through Redis: ``Fleet``.

Many processes calling one downstream (Dagster or Celery workers, a
``multiprocessing`` pool) should see it as one: when it fails, every worker
should stop at once, not each after its own five failures; the retries of
all of them should come out of one budget; and together they should send
at the rate it accepts. Build one ``Fleet`` per process and give it to the
guards; guards of the same name share their state through Redis::

    fleet = Fleet("redis://10.0.0.5:6379/0")
    breaker = CircuitBreaker("s3_uploads", fleet=fleet)
    budget = RetryBudget.token_bucket("s3_uploads", fleet=fleet)

    @with_s3_retry(breaker=breaker, budget=budget)
    def upload_to_s3(key, data): ...

The core's rule holds: a call never waits on Redis. One thread per process
talks to it (every ``refresh`` seconds, each step bounded by ``timeout``);
while Redis is unreachable every guard works alone on its local state, and
rejoins the fleet when Redis is back. No Python Redis client is needed.
"""

from __future__ import annotations

from typing import Dict, Optional

from . import _backstop
from ._checks import optional_count, seconds

__all__ = ["Fleet"]


class Fleet:
    """The Redis at ``redis_url`` (``redis://host:port/db``,
    ``redis://:password@host:port/``) as a fleet's shared store. Settings in
    seconds, ``None`` for the core's default: ``timeout`` (0.05) bounds each
    step with Redis, ``refresh`` (0.2) is how often guards catch up with the
    fleet (and bounds how long after a trip elsewhere this process still
    calls), ``reconnect_every`` (1), ``key_ttl`` (86 400: an abandoned
    fleet's keys expire), ``probe_lease`` (30: how long the process that won
    a half-open probe holds it); ``budget_lease`` is how many tokens a
    shared budget takes from the fleet's bucket at a time (default: two
    retries' worth, 20 tokens): a process that retries in bursts denies
    retries once its lease is spent until the next ``refresh`` brings more,
    so raise it for bursty workers. A bad setting is a ``ValueError`` naming
    it; the URL is never printed (it may hold a password)."""

    def __init__(
        self,
        redis_url: str,
        *,
        timeout: Optional[float] = None,
        refresh: Optional[float] = None,
        reconnect_every: Optional[float] = None,
        key_ttl: Optional[float] = None,
        probe_lease: Optional[float] = None,
        budget_lease: Optional[int] = None,
    ) -> None:
        if not isinstance(redis_url, str):
            raise TypeError(f"redis_url must be a str, not {type(redis_url).__name__}")
        settings = {
            "timeout": timeout, "refresh": refresh, "reconnect_every": reconnect_every, "key_ttl": key_ttl,
            "probe_lease": probe_lease,
        }
        checked = {k: None if v is None else seconds(k, v) for k, v in settings.items()}
        self._fleet = _backstop.Fleet(redis_url, budget_lease=optional_count("budget_lease", budget_lease, "fleet"), **checked)

    @property
    def is_connected(self) -> bool:
        """Whether Redis answers now (if not, the guards work alone)."""
        return self._fleet.is_connected

    def stats(self) -> Dict[str, int]:
        """``round_trips`` to Redis, ``fallbacks`` (Redis lost), ``rejoins``
        and shared ``guards`` in use, so far."""
        round_trips, fallbacks, rejoins, guards = self._fleet.stats()
        return {"round_trips": round_trips, "fallbacks": fallbacks, "rejoins": rejoins, "guards": guards}

    def __repr__(self) -> str:
        return f"Fleet(connected={self.is_connected})"


def fleet_handle(fleet: Optional[Fleet]) -> Optional[_backstop.Fleet]:
    """The core's fleet of ``fleet``, or a ``TypeError`` for anything else."""
    if fleet is None:
        return None
    if not isinstance(fleet, Fleet):
        raise TypeError(f"fleet must be a Fleet, not {type(fleet).__name__}")
    return fleet._fleet
