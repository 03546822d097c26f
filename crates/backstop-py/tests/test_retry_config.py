"""Document 003's API (``RetryConfig``, ``DEFAULT_RETRY_CONFIG``, ``with_retry``,
``create_retry_decorator``, ``retry_call``): its code blocks as written
(``from backstop import`` for ``from src.etl.core.retry import``), in virtual
time, and how ``with_retry``/``retry_call`` tell its call forms from
document 004's."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from backstop import (
    DEFAULT_RETRY_CONFIG,
    RetryConfig,
    RetryExhaustedError,
    RetryPolicy,
    create_retry_decorator,
    retry_call,
    with_retry,
)
from backstop.testing import virtual_time
from flaky import Flaky as _Flaky


def Flaky(failures, error=None):  # noqa: N802 - a class's name, as the other tests use it
    return _Flaky(failures, error, echo=True)


def test_the_default_config_is_three_attempts_waiting_two_to_thirty_seconds():
    assert (DEFAULT_RETRY_CONFIG.max_attempts, DEFAULT_RETRY_CONFIG.min_wait_seconds) == (3, 2.0)
    assert DEFAULT_RETRY_CONFIG.max_wait_seconds == 30.0
    flaky = Flaky(10)

    @with_retry()
    def call_ollama(prompt: str) -> str:
        return flaky(prompt)

    with virtual_time() as clock, pytest.raises(RetryExhaustedError) as info:
        call_ollama("hello")
    assert flaky.calls == 3 and info.value.attempts == 3
    assert len(clock.sleeps) == 2 and all(2.0 <= s <= 30.0 for s in clock.sleeps)


def test_custom_config_with_a_logger_logs_before_and_after_each_attempt(caplog):
    my_logger = logging.getLogger("etl")
    config = RetryConfig(
        max_attempts=5,
        min_wait_seconds=1.0,
        max_wait_seconds=60.0,
        retry_exceptions=(ConnectionError, TimeoutError),
    )
    flaky = Flaky(2, TimeoutError("slow"))

    @with_retry(config=config, logger=my_logger)
    def call_api():
        return flaky()

    with caplog.at_level(logging.INFO, logger="etl"), virtual_time() as clock:
        assert call_api()[0] == "ok"
    etl = [r.getMessage() for r in caplog.records if r.name == "etl"]
    assert etl[0] == "Starting call to call_api, attempt 1 of 5"
    assert etl[1].startswith("Finished call to call_api after ") and etl[1].endswith("attempt 1 of 5: TimeoutError: slow")
    assert etl[-1].endswith("attempt 3 of 5: succeeded") and len(etl) == 6
    assert len(clock.sleeps) == 2 and all(1.0 <= s <= 60.0 for s in clock.sleeps)


def test_waits_grow_with_jitter_and_stay_within_the_bounds():
    config = RetryConfig(max_attempts=8, min_wait_seconds=1.0, max_wait_seconds=10.0)
    with virtual_time() as clock, pytest.raises(RetryExhaustedError):
        with_retry(config=config)(Flaky(100))()
    assert len(clock.sleeps) == 7 and all(1.0 <= s <= 10.0 for s in clock.sleeps)
    with virtual_time() as other, pytest.raises(RetryExhaustedError):
        with_retry(config=config)(Flaky(100))()
    assert other.sleeps != clock.sleeps, "jitter: two runs wait differently"
    # They grow: over 300 runs, each retry's mean wait is longer than the
    # one before, until the cap (decorrelated jitter: uniform between the
    # minimum and three times the last wait).
    totals = [0.0] * 4
    for _ in range(300):
        with virtual_time() as run, pytest.raises(RetryExhaustedError):
            with_retry(config=RetryConfig(max_attempts=5, min_wait_seconds=1.0, max_wait_seconds=60.0))(Flaky(100))()
        totals = [t + s for t, s in zip(totals, run.sleeps)]
    means = [t / 300 for t in totals]
    assert means == sorted(means) and means[3] > 2 * means[0], means


def test_exception_specific_retry():
    config = RetryConfig(max_attempts=5, retry_exceptions=(ConnectionError,))
    flaky = Flaky(1, ValueError("not transient"))
    with virtual_time() as clock, pytest.raises(ValueError, match="not transient"):
        with_retry(config=config)(flaky)()
    assert flaky.calls == 1 and clock.sleeps == []


def test_create_retry_decorator_and_retry_call_with_positional_config_and_logger():
    config = RetryConfig(max_attempts=2, min_wait_seconds=0.5, max_wait_seconds=1.0)
    with virtual_time():
        assert create_retry_decorator(config)(Flaky(1))()[0] == "ok"
        assert retry_call(Flaky(1), config, None, "a", key=1) == ("ok", ("a",), {"key": 1})
        assert retry_call(Flaky(1), None, logging.getLogger("etl"))[0] == "ok"
        # Document 004's form of the same name.
        assert retry_call(Flaky(1), args=("b",), kwargs={"k": 2}, max_retries=1) == ("ok", ("b",), {"k": 2})
        assert retry_call(Flaky(1), policy=RetryPolicy(max_retries=1))[0] == "ok"


def test_the_forms_do_not_mix_and_bad_input_names_the_parameter():
    with pytest.raises(TypeError, match="not both"):
        with_retry(config=DEFAULT_RETRY_CONFIG, max_retries=3)
    with pytest.raises(TypeError, match="unexpected keyword arguments: max_attempts"):
        with_retry(max_attempts=3)
    with pytest.raises(TypeError, match="second argument is the RetryConfig"):
        retry_call(print, "not a config")
    with pytest.raises(ValueError, match="min_wait_seconds is 5s, above max_wait_seconds 1s"):
        RetryConfig(min_wait_seconds=5, max_wait_seconds=1)
    with pytest.raises(ValueError, match="max_attempts is 0"):
        RetryConfig(max_attempts=0)
    with pytest.raises(TypeError, match="retry_exceptions must hold exception classes"):
        RetryConfig(retry_exceptions=("ConnectionError",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_RETRY_CONFIG.max_attempts = 9
