"""What a user can get wrong, each answered with a clear error at once:
values of the wrong kind or size, things that are not functions, guards on
the wrong clock, the run object's steps out of turn; and the breaker's
decorator under concurrent calls."""

from __future__ import annotations

import asyncio
import threading

import pytest

from backstop import (
    CircuitBreaker,
    CircuitBreakerConfiguration,
    CircuitOpenException,
    CircuitState,
    Pacer,
    RetryBudget,
    RetryConfig,
    RetryConfiguration,
    RetryPolicy,
    _backstop,
    create_batch_retry_wrapper,
    execute,
    retry_call,
    with_retry,
    with_s3_retry,
)
from backstop.testing import virtual_time


@pytest.mark.parametrize(
    "make, error, text",
    [
        (lambda: RetryBudget.token_bucket(capacity=2**70), ValueError, "capacity is 1180591620717411303424; allowed"),
        (lambda: RetryBudget.token_bucket(retry_cost=-1), ValueError, "retry_cost is -1"),
        (lambda: RetryBudget.token_bucket(timeout_cost="10"), TypeError, "timeout_cost must be an int, not str"),
        (lambda: RetryBudget.token_bucket(capacity=True), TypeError, "capacity must be an int, not bool"),
        (lambda: RetryBudget.ratio(window=True), TypeError, "window must be a number, not bool"),
        (lambda: RetryBudget.ratio(ratio="0.1"), TypeError, "ratio must be a number, not str"),
        (lambda: Pacer(burst=2**70), ValueError, "burst is"),
        (lambda: Pacer(burst=True), TypeError, "burst must be an int, not bool"),
        (lambda: Pacer(min_rate=1e-300, initial_rate=1e-300), ValueError, "min_rate is 1e-300; allowed: 0.001"),
        (lambda: CircuitBreakerConfiguration(failure_threshold=2**70), ValueError, "failure_threshold is"),
        (lambda: CircuitBreaker("b", CircuitBreakerConfiguration(recovery_timeout_seconds=1e300)), ValueError, "recovery_timeout_seconds is 1e300; allowed: a number of seconds from 0 to 1.8e19"),
        (lambda: RetryConfig(max_attempts=2**70), ValueError, "max_attempts is"),
        (lambda: RetryConfiguration(max_attempts=2**70), ValueError, "max_attempts is"),
        (lambda: RetryPolicy(max_retries=2**63), ValueError, "max_retries is 9223372036854775808"),
        (lambda: RetryPolicy(max_retries=2**32 - 1), ValueError, "max_retries is 4294967295"),
    ],
)
def test_values_of_the_wrong_kind_or_size_name_their_parameter(make, error, text):
    with pytest.raises(error, match=text):
        make()


def test_what_is_not_a_function_or_not_a_setting_is_refused_at_once():
    with pytest.raises(TypeError, match="needs a function to retry, not int"):
        with_retry(1)
    with pytest.raises(TypeError, match="retry_call needs a function to call, not NoneType"):
        retry_call(None)
    with pytest.raises(TypeError, match="create_batch_retry_wrapper needs a function"):
        create_batch_retry_wrapper(None)
    with pytest.raises(TypeError, match="policy must be a RetryPolicy, not str"):
        create_batch_retry_wrapper(str, policy="p")
    with pytest.raises(TypeError, match="config must be a RetryConfiguration, not str"):
        with_s3_retry(config="x")
    with pytest.raises(TypeError, match="execute needs a function"):
        execute(None, [1])

    async def fetch(x):
        return x

    with pytest.raises(TypeError, match="is async: await asyncio.gather"):
        execute(fetch, [1, 2])


def test_guards_on_the_wrong_clock_are_an_error_not_a_hang():
    with virtual_time():
        made_virtual = Pacer("p", initial_rate=1.0, burst=1)
        breaker = CircuitBreaker("b")
    paced = with_retry(max_retries=1, pacer=made_virtual)(lambda: "ok")
    with pytest.raises(RuntimeError, match="made inside a virtual_time"):
        paced()  # outside the block, where its clock stands still
    with pytest.raises(RuntimeError, match="made inside a virtual_time"):
        with_s3_retry(breaker=breaker)(lambda: "ok")()
    real = Pacer("real", initial_rate=1.0, burst=1)
    spaced = with_retry(max_retries=1, pacer=real)(lambda: "ok")
    with virtual_time(), pytest.raises(RuntimeError, match="cannot pace a run inside it"):
        spaced()

    async def call():
        return "ok"

    with virtual_time(), pytest.raises(RuntimeError, match="cannot pace a run inside it"):
        asyncio.run(with_retry(max_retries=1, pacer=real)(call)())
    # A breaker and a budget made in real time work under virtual time.
    with virtual_time():
        assert with_retry(max_retries=1, breaker=CircuitBreaker("r"), budget=RetryBudget())(lambda: "ok")() == "ok"


def test_the_run_objects_steps_out_of_turn_are_errors():
    schedule = RetryPolicy(max_retries=3, initial_delay=0.0)._schedule
    budget = RetryBudget.token_bucket(capacity=100)
    guards = _backstop.RunGuards(None, budget._budget, None)
    run = _backstop.AsyncRun(schedule, lambda exc: True, None, "op", None, guards)
    with pytest.raises(RuntimeError, match=r"resume\(\) out of turn: the run is not started"):
        run.resume()
    assert run.start() is None
    with pytest.raises(RuntimeError, match=r"start\(\) out of turn: the run is waiting for the attempt's outcome"):
        run.start()
    assert run.failed(ConnectionError("x")) == 0.0
    assert budget.level == 95
    with pytest.raises(RuntimeError, match=r"failed\(\) out of turn: the run is sleeping"):
        run.failed(ConnectionError("x"))
    with pytest.raises(RuntimeError, match=r"succeeded\(\) out of turn: the run is sleeping"):
        run.succeeded()
    assert budget.level == 95, "a step out of turn withdraws nothing"
    run.close()
    assert budget.level == 100
    with pytest.raises(RuntimeError, match="the run is over"):
        run.start()


def test_the_breakers_decorator_reports_each_call_on_its_own_permit():
    """A slow call begun while closed, a failure that opens the circuit, a
    probe that succeeds: the probe closes the circuit (the slow call's
    outcome is its own, whenever it comes)."""
    with virtual_time() as clock:
        breaker = CircuitBreaker("s3", CircuitBreakerConfiguration(failure_threshold=1, recovery_timeout_seconds=30))
        release = threading.Event()

        @breaker
        def call(kind):
            if kind == "slow":
                release.wait(10)
            if kind == "fail":
                raise ConnectionError("down")
            return kind

        slow = threading.Thread(target=call, args=("slow",))
        slow.start()
        with pytest.raises(ConnectionError):
            call("fail")
        assert breaker.state == CircuitState.OPEN
        clock.advance(30)
        assert call("probe") == "probe"
        assert breaker.state == CircuitState.CLOSED
        assert call("next") == "next"
        release.set()
        slow.join()
        with breaker:
            with breaker:  # nested blocks hold their own permits
                pass
        assert breaker.state == CircuitState.CLOSED
        breaker.isolate()
        with pytest.raises(CircuitOpenException):
            with breaker:
                pass
