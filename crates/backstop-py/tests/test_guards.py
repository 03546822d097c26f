"""Guards on runs: a ``CircuitBreaker``, a ``RetryBudget`` and a ``Pacer``
given to the decorators, each the core's; in virtual time."""

from __future__ import annotations

import asyncio

import pytest

from backstop import (
    CircuitBreaker,
    CircuitBreakerConfiguration,
    CircuitOpenException,
    CircuitState,
    Pacer,
    RetryBudget,
    RetryExhaustedError,
    with_api_retry,
    with_retry,
    with_s3_retry,
)
from backstop.testing import virtual_time
from flaky import Flaky


class SlowDown(Exception):
    """An S3 throttling error as botocore raises it: a response with its code."""

    def __init__(self):
        super().__init__("SlowDown")
        self.response = {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503, "HTTPHeaders": {}}}


def test_an_open_breaker_refuses_calls_and_chains_the_failure_that_opened_it():
    with virtual_time() as clock:
        breaker = CircuitBreaker("weather", CircuitBreakerConfiguration(failure_threshold=3, recovery_timeout_seconds=30))
        down = Flaky(1000)

        @with_retry(max_retries=5, initial_delay=1.0, jitter=False, breaker=breaker)
        def fetch():
            return down()

        with pytest.raises(CircuitOpenException) as opened:
            fetch()
        assert down.calls == 3 and clock.sleeps == [1.0, 2.0], "no sleep against the open circuit"
        assert opened.value.name == "weather" and opened.value.state == CircuitState.OPEN
        assert isinstance(opened.value.__cause__, ConnectionError)
        with pytest.raises(CircuitOpenException) as refused:
            fetch()
        assert down.calls == 3 and refused.value.__cause__ is None, "refused before any call"
        clock.advance(30)
        down.failures = 0
        assert fetch() == "ok" and breaker.state == CircuitState.CLOSED


def test_a_spent_budget_ends_the_retries_of_every_run_sharing_it():
    with virtual_time() as clock:
        budget = RetryBudget.token_bucket("s3", capacity=10)  # two retries at 5 tokens each
        assert budget.level == 10

        @with_s3_retry(budget=budget)
        def upload():
            raise SlowDown()

        with pytest.raises(RetryExhaustedError) as first:
            upload()
        assert first.value.attempts == 3 and len(clock.sleeps) == 2
        assert budget.level == 0 and budget.denied == 1
        with pytest.raises(RetryExhaustedError) as second:
            upload()
        assert second.value.attempts == 1 and isinstance(second.value.__cause__, SlowDown)


def test_a_successful_call_refills_the_budget_and_a_ratio_budget_counts_requests():
    with virtual_time():
        budget = RetryBudget.token_bucket(capacity=10)
        flaky = Flaky(1)
        assert with_retry(max_retries=3, budget=budget)(flaky)() == "ok"
        assert budget.level == 10, "the retry's cost came back with its success"
        ratio = RetryBudget.ratio("api", ratio=0.5, min_per_sec=0.0)
        ok = with_retry(max_retries=3, budget=ratio)(lambda: "ok")
        for _ in range(4):
            ok()
        assert ratio.level == pytest.approx(2.0)


def test_a_cancelled_async_run_gives_its_retry_tokens_back():
    budget = RetryBudget.token_bucket(capacity=10)

    @with_retry(max_retries=3, initial_delay=30.0, budget=budget)
    async def upload():
        raise ConnectionError("reset")

    async def main():
        task = asyncio.ensure_future(upload())
        while budget.level == 10:
            await asyncio.sleep(0.001)
        assert budget.level == 5  # withdrawn for the retry it sleeps towards
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert budget.level == 10


def test_a_pacer_learns_from_throttling_and_spaces_the_calls():
    with virtual_time() as clock:
        pacer = Pacer("s3-prefix", initial_rate=2.0, burst=1)
        calls = []

        @with_s3_retry(pacer=pacer)
        def put():
            calls.append(clock.now)
            return "etag"

        for _ in range(3):
            put()
        gaps = [b - a for a, b in zip(calls, calls[1:])]
        assert all(g == pytest.approx(0.5, abs=0.01) for g in gaps), gaps
        assert pacer.rate == pytest.approx(2.0, rel=0.5)
        before = pacer.rate
        with pytest.raises(RetryExhaustedError):
            with_s3_retry(pacer=pacer, max_attempts=1)(Flaky(1, SlowDown()))()
        assert pacer.rate == pytest.approx(0.7 * before, rel=0.05), "a SlowDown cuts the rate by CUBIC's beta"


def test_guards_of_the_wrong_kind_and_bad_settings_name_the_parameter():
    with pytest.raises(TypeError, match="budget must be a RetryBudget, not int"):
        with_retry(max_retries=1, budget=5)
    with pytest.raises(TypeError, match="breaker must be a CircuitBreaker, not str"):
        with_api_retry(breaker="api")
    with pytest.raises(TypeError, match="pacer must be a Pacer"):
        with_s3_retry(pacer=RetryBudget())
    with pytest.raises(ValueError, match="capacity is 0"):
        RetryBudget.token_bucket(capacity=0)
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget.ratio(ratio=-1.0)
    with pytest.raises(ValueError, match="window is -1"):
        RetryBudget.ratio(window=-1.0)
    with pytest.raises(ValueError, match="min_rate"):
        Pacer(min_rate=0.0)
    with pytest.raises(ValueError, match="burst is -3"):
        Pacer(burst=-3)
