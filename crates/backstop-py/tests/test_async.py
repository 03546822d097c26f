"""``async def`` functions: retried by every decorator without blocking the
event loop, in virtual time as in real time; cancelling the task cancels
the run and gives back what it held."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging

import pytest

from backstop import (
    CircuitBreaker,
    CircuitBreakerConfiguration,
    CircuitOpenException,
    CircuitState,
    RetryConfig,
    RetryExhaustedError,
    RetryPolicy,
    create_batch_retry_wrapper,
    retry_call,
    with_api_retry,
    with_retry,
    with_s3_retry,
)
from backstop.testing import virtual_time


class AsyncFlaky:
    """An async function failing `failures` times with `error`, then returning `value`."""

    def __init__(self, failures, error=None, value="ok"):
        self.failures, self.value, self.calls = failures, value, 0
        self.error = error if error is not None else ConnectionError("connection reset")

    async def __call__(self, *args, **kwargs):
        self.calls += 1
        await asyncio.sleep(0)
        if self.calls <= self.failures:
            raise self.error
        return (self.value, args, kwargs)


def test_every_decorator_retries_an_async_function_and_keeps_it_async():
    flaky = AsyncFlaky(2)

    async def upload_to_s3(key, *, body):
        """Uploads."""
        return await flaky(key, body=body)

    decorated = [
        with_retry(upload_to_s3),
        with_retry(max_retries=3, initial_delay=1.0, jitter=False)(upload_to_s3),
        with_retry(config=RetryConfig(max_attempts=3, retry_exceptions=(ConnectionError,)))(upload_to_s3),
        with_s3_retry()(upload_to_s3),
        with_api_retry()(upload_to_s3),
    ]
    for wrapper in decorated:
        flaky.calls = 0
        assert inspect.iscoroutinefunction(wrapper)
        assert wrapper.__name__ == "upload_to_s3" and wrapper.__doc__ == "Uploads."
        with virtual_time() as clock:
            result = asyncio.run(wrapper("k", body=b"x"))
        assert result == ("ok", ("k",), {"body": b"x"})
        assert flaky.calls == 3 and len(clock.sleeps) == 2, wrapper
    # Document 004's schedule, to the second, as the sync run sleeps it.
    flaky.calls = 0
    with virtual_time() as clock:
        asyncio.run(decorated[1]("k", body=b""))
    assert clock.sleeps == [1.0, 2.0]


def test_errors_are_raised_as_themselves_or_chained_after_the_last_attempt():
    @with_retry(max_retries=2, initial_delay=0.5, retry_on_exceptions=(ConnectionError,))
    async def fetch(fails_with):
        raise fails_with

    with virtual_time() as clock:
        with pytest.raises(KeyError):
            asyncio.run(fetch(KeyError("no such key")))
        assert clock.sleeps == []
        with pytest.raises(RetryExhaustedError) as raised:
            asyncio.run(fetch(ConnectionError("reset")))
    assert raised.value.attempts == 3 and isinstance(raised.value.__cause__, ConnectionError)
    assert len(clock.sleeps) == 2


def test_the_event_loop_runs_other_tasks_while_a_run_sleeps():
    flaky = AsyncFlaky(3)
    ticks = []

    @with_retry(max_retries=3, initial_delay=0.002, jitter=False)
    async def call():
        return await flaky()

    async def ticker():
        while True:
            ticks.append(flaky.calls)
            await asyncio.sleep(0.0005)

    async def main():
        tick = asyncio.ensure_future(ticker())
        try:
            return await call()
        finally:
            tick.cancel()

    assert asyncio.run(main())[0] == "ok"
    # The ticker ran between the attempts: during each backoff, not only
    # before the first and after the last.
    assert {1, 2, 3} <= set(ticks)


def test_retry_call_and_the_batch_wrapper_take_async_functions():
    with virtual_time() as clock:
        flaky = AsyncFlaky(1)
        assert asyncio.run(retry_call(flaky, args=(1,), kwargs={"a": 2}, max_retries=2)) == ("ok", (1,), {"a": 2})
        flaky = AsyncFlaky(1)
        assert asyncio.run(retry_call(flaky, None, None, "x"))[1] == ("x",)

        async def square(x):
            if x < 0:
                raise ConnectionError(f"bad item {x}")
            return x * x

        wrapper = create_batch_retry_wrapper(square, RetryPolicy(max_retries=1), fail_fast=False)

        async def batch():
            return await asyncio.gather(*(wrapper(x) for x in (2, -1, 3)))

        results = asyncio.run(batch())
    assert results[0] == 4 and results[2] == 9
    assert isinstance(results[1], RetryExhaustedError)


def test_the_logger_form_logs_each_async_attempt(caplog):
    flaky = AsyncFlaky(1)
    logger = logging.getLogger("etl.stage")

    @with_retry(config=RetryConfig(max_attempts=3, retry_exceptions=(ConnectionError,)), logger=logger)
    async def load():
        return await flaky()

    with caplog.at_level(logging.INFO), virtual_time():
        asyncio.run(load())
    lines = [r.getMessage() for r in caplog.records if r.name == "etl.stage"]
    assert lines[0] == "Starting call to load, attempt 1 of 3"
    assert lines[1].endswith("attempt 1 of 3: ConnectionError: connection reset")
    assert lines[2] == "Starting call to load, attempt 2 of 3"
    assert lines[3].endswith("attempt 2 of 3: succeeded")


def test_cancelling_the_task_during_a_backoff_ends_the_run_at_once():
    flaky = AsyncFlaky(100)

    @with_retry(max_retries=5, initial_delay=30.0, jitter=False)
    async def upload():
        return await flaky()

    async def main():
        task = asyncio.ensure_future(upload())
        while flaky.calls == 0:
            await asyncio.sleep(0)
        await asyncio.sleep(0.005)  # into the 30 s backoff
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)

    asyncio.run(main())
    assert flaky.calls == 1


def test_a_cancelled_half_open_probe_gives_its_place_back():
    with virtual_time() as clock:
        breaker = CircuitBreaker("s3", CircuitBreakerConfiguration(failure_threshold=1, recovery_timeout_seconds=30))
        started = asyncio.Event

        @breaker
        async def probe(gate):
            await gate.wait()
            return "ok"

        async def main():
            breaker.record_failure()
            assert breaker.state == CircuitState.OPEN
            clock.advance(30)
            gate = started()
            first = asyncio.ensure_future(probe(gate))
            await asyncio.sleep(0)  # the first probe is out
            with pytest.raises(CircuitOpenException):
                await probe(gate)  # one probe at a time
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            gate.set()
            return await probe(gate)  # the cancelled probe counted nothing

        assert asyncio.run(main()) == "ok"
        assert breaker.state == CircuitState.CLOSED


def test_a_method_and_a_partial_are_retried_too():
    class Client:
        def __init__(self):
            self.flaky = AsyncFlaky(1)

        @with_retry(max_retries=2)
        async def get(self, key):
            return await self.flaky(key)

    with virtual_time():
        client = Client()
        assert asyncio.run(client.get("k")) == ("ok", ("k",), {})
        flaky = AsyncFlaky(1)
        partial = functools.partial(flaky, "bound")
        assert asyncio.run(retry_call(partial, max_retries=2)) == ("ok", ("bound",), {})
