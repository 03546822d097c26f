"""The circuit breaker of documents 000 and 002, on the core's breaker:
document 002's block as written, the state machine in virtual time, exactly
one probe across 16 threads, the decorator and context-manager forms, one
WARNING per state change."""

from __future__ import annotations

import logging
import threading

import pytest

from backstop import CircuitBreaker, CircuitBreakerConfiguration, CircuitOpenException, CircuitState
from backstop.testing import virtual_time


class S3Stub:
    def __init__(self, fail):
        self.fail, self.puts = fail, 0

    def put_object(self, Bucket, Key, Body):
        self.puts += 1
        if self.fail:
            raise ConnectionError("connection reset")


def test_document_002_block_as_written():
    s3_client = S3Stub(fail=True)
    cb_config = CircuitBreakerConfiguration(
        failure_threshold=5,
        recovery_timeout_seconds=30.0,
    )
    upload_circuit = CircuitBreaker("s3_upload", config=cb_config)

    def upload_with_circuit_breaker(bucket: str, key: str, data: bytes) -> str:
        """Upload with circuit breaker protection."""
        if not upload_circuit.allow_request():
            raise CircuitOpenException("s3_upload", upload_circuit.state)

        try:
            s3_client.put_object(Bucket=bucket, Key=key, Body=data)
            upload_circuit.record_success()
            return key
        except Exception as e:
            upload_circuit.record_failure()
            raise

    for _ in range(5):
        with pytest.raises(ConnectionError):
            upload_with_circuit_breaker("bike-data", "k", b"x")
    assert upload_circuit.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenException) as info:
        upload_with_circuit_breaker("bike-data", "k", b"x")
    assert s3_client.puts == 5, "an open circuit makes no call"
    assert info.value.name == "s3_upload" and info.value.state is CircuitState.OPEN


def test_defaults_and_the_state_machine_in_virtual_time():
    assert CircuitBreakerConfiguration() == CircuitBreakerConfiguration(5, 30.0, 1)
    with virtual_time() as clock:
        breaker = CircuitBreaker("api", CircuitBreakerConfiguration(failure_threshold=2, recovery_timeout_seconds=10))
        assert breaker.state is CircuitState.CLOSED
        for _ in range(2):
            assert breaker.allow_request()
            breaker.record_failure()
        assert breaker.state is CircuitState.OPEN and not breaker.allow_request()
        clock.advance(9.9)
        assert breaker.state is CircuitState.OPEN
        clock.advance(0.2)
        assert breaker.state is CircuitState.HALF_OPEN
        assert breaker.allow_request()
        breaker.record_failure()
        assert breaker.state is CircuitState.OPEN, "a failed probe opens it again"
        clock.advance(10.1)
        assert breaker.allow_request()
        breaker.record_success()
        assert breaker.state is CircuitState.CLOSED


def test_half_open_lets_exactly_one_probe_through_across_16_threads():
    with virtual_time() as clock:
        breaker = CircuitBreaker("db", CircuitBreakerConfiguration(failure_threshold=1, recovery_timeout_seconds=5))
        assert breaker.allow_request()
        breaker.record_failure()
        clock.advance(5.1)
        allowed = ask_from_16_threads(breaker)
    assert allowed.count(True) == 1, allowed


def test_decorator_and_context_manager_count_exceptions_as_failures():
    breaker = CircuitBreaker("fn", CircuitBreakerConfiguration(failure_threshold=2))

    @breaker
    def flaky():
        raise TimeoutError("slow")

    for _ in range(2):
        with pytest.raises(TimeoutError):
            flaky()
    with pytest.raises(CircuitOpenException):
        flaky()
    with pytest.raises(CircuitOpenException):
        with breaker:
            pass
    assert flaky.__name__ == "flaky"
    breaker.reset()
    with breaker:
        pass
    assert breaker.state is CircuitState.CLOSED


def test_each_state_change_is_one_warning(caplog):
    with caplog.at_level(logging.INFO, logger="backstop"), virtual_time() as clock:
        breaker = CircuitBreaker("weather_api", CircuitBreakerConfiguration(failure_threshold=1, recovery_timeout_seconds=1))
        breaker.allow_request()
        breaker.record_failure()
        clock.advance(1.5)
        breaker.allow_request()
        breaker.record_success()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "backstop"]
    assert lines[0] == ("WARNING", "circuit weather_api opened for 1.0 seconds: a failure")
    assert [level for level, _ in lines] == ["WARNING"] * len(lines) and len(lines) == 3, lines
    assert lines[-1][1].startswith("circuit weather_api closed")


@pytest.mark.parametrize(
    "params, error, text",
    [
        ({"failure_threshold": 0}, ValueError, "failure_threshold is 0; allowed: 1 or more"),
        ({"failure_threshold": -1}, ValueError, "failure_threshold is -1"),
        ({"recovery_timeout_seconds": -5}, ValueError, "recovery_timeout_seconds is -5"),
        ({"success_threshold": 1.5}, TypeError, "success_threshold must be an int"),
    ],
)
def test_bad_configuration_names_the_parameter(params, error, text):
    with pytest.raises(error, match=text):
        CircuitBreaker("x", CircuitBreakerConfiguration(**params))


def test_half_open_probes_one_at_a_time_across_16_threads_until_success_threshold():
    with virtual_time() as clock:
        config = CircuitBreakerConfiguration(failure_threshold=1, recovery_timeout_seconds=5, success_threshold=3)
        breaker = CircuitBreaker("db", config)
        assert breaker.allow_request()
        breaker.record_failure()
        clock.advance(5.1)
        for round in range(3):
            assert breaker.state == CircuitState.HALF_OPEN, round
            allowed = ask_from_16_threads(breaker)
            assert allowed.count(True) == 1, (round, allowed)
            breaker.record_success()
        assert breaker.state == CircuitState.CLOSED


def ask_from_16_threads(breaker: CircuitBreaker) -> list:
    """16 threads ask `breaker` for a request at once; their answers."""
    barrier = threading.Barrier(16)
    allowed: list = []

    def ask():
        barrier.wait()
        allowed.append(breaker.allow_request())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return allowed
