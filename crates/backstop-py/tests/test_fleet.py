"""Guards shared by worker processes through a private ``redis-server``:
two processes, one breaker and one budget; Redis gone; bad settings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from backstop import (
    CircuitBreaker,
    CircuitBreakerConfiguration,
    CircuitState,
    Fleet,
    Pacer,
    RetryBudget,
    RetryExhaustedError,
    with_retry,
)

#: Each guard catches up with the fleet this often, in these tests.
REFRESH = 0.01


def until(condition, within=10.0):
    """Polls `condition` (the fleet syncs on its own thread) for at most `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def worker(redis_url, body):
    """Another process running `body` with `fleet` and backstop imported;
    it prints "ready" when done (what it printed before is in `.said`), then
    waits for a line on stdin to exit."""
    script = textwrap.dedent(
        f"""
        import sys
        from backstop import *
        fleet = Fleet({redis_url!r}, refresh={REFRESH})
        """
    ) + textwrap.dedent(body) + '\nprint("ready", flush=True)\nsys.stdin.readline()\n'
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child.said = []  # what it printed before "ready"
    for line in child.stdout:
        if line.strip() == "ready":
            return child
        child.said.append(line.strip())
    raise AssertionError(f"the worker ended before it was ready, saying {child.said!r}")


def finish(child):
    child.communicate("exit\n", timeout=10)
    assert child.returncode == 0


def test_a_breaker_tripped_in_one_process_is_open_in_the_other(redis_url):
    fleet = Fleet(redis_url, refresh=REFRESH)
    config = CircuitBreakerConfiguration(failure_threshold=3, recovery_timeout_seconds=60)
    breaker = CircuitBreaker("fleet-s3", config, fleet=fleet)
    assert until(lambda: fleet.is_connected)
    assert breaker.state == CircuitState.CLOSED and breaker.allow_request()
    breaker.record_success()
    child = worker(
        redis_url,
        """
        config = CircuitBreakerConfiguration(failure_threshold=3, recovery_timeout_seconds=60)
        breaker = CircuitBreaker("fleet-s3", config, fleet=fleet)
        for _ in range(3):
            breaker.allow_request()
            breaker.record_failure()
        assert breaker.state == CircuitState.OPEN
        """,
    )
    try:
        # Followed within a refresh or two, though this process saw no failure.
        assert until(lambda: breaker.state == CircuitState.OPEN), breaker.state
        assert not breaker.allow_request()
    finally:
        finish(child)


RETRYING = """
budget = RetryBudget.token_bucket("fleet-retries", capacity=20, fleet=fleet)

@with_retry(max_retries=10, initial_delay=0.0, budget=budget)
def failing():
    raise ConnectionError("down")

def retries_for(seconds):
    # Failing runs for `seconds` (the fleet's thread leases tokens between
    # them): how many retries the budget allowed in all.
    import time
    retries, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            failing()
        except RetryExhaustedError as e:
            retries += e.attempts - 1
        time.sleep(0.01)
    return retries
"""


def retries_in_two_processes(redis_url, code):
    """Runs ``code`` (which defines ``retries_for``) in a worker process, then
    here: the retries each was allowed in 0.3 s of failing runs."""
    child = worker(redis_url, code + "\nprint(retries_for(0.3), flush=True)\n")
    there = int(child.said[0])
    try:
        fleet = Fleet(redis_url, refresh=REFRESH)
        assert until(lambda: fleet.is_connected)
        scope = {"fleet": fleet, **{n: globals()[n] for n in ("RetryBudget", "RetryExhaustedError", "with_retry")}}
        exec(code, scope)
        here = scope["retries_for"](0.3)
    finally:
        finish(child)
    return there, here


def test_the_retries_of_two_processes_come_out_of_one_budget(redis_url):
    # The fleet's bucket holds 20 tokens: 4 retries at 5 each, for everyone.
    there, here = retries_in_two_processes(redis_url, RETRYING)
    assert there >= 2, f"the worker got {there} retries"
    # Alone, each process would have had 4 (8 in all).
    assert there + here <= 4, (there, here)


def test_the_retries_of_two_processes_share_one_ratio_budgets_floor(redis_url):
    # No share of requests (ratio 0): the floor alone, 0.5 a second over 10 s,
    # is 5 retries for the whole fleet.
    ratio = RETRYING.replace(
        'RetryBudget.token_bucket("fleet-retries", capacity=20, fleet=fleet)',
        'RetryBudget.ratio("fleet-ratio", ratio=0.0, min_per_sec=0.5, fleet=fleet)',
    )
    there, here = retries_in_two_processes(redis_url, ratio)
    assert there >= 3, f"the worker got {there} retries"
    # Alone, each process would have had 5 (10 in all).
    assert there + here <= 5, (there, here)


def test_a_larger_lease_serves_a_burst_of_retries(redis_url):
    """A shared budget spends the tokens it leased from the fleet; past
    them it denies until the fleet's thread leases more (a call never waits
    on Redis). A burst larger than the lease needs a larger lease."""
    import concurrent.futures

    def denied_in_a_burst(fleet, fleet_lease):
        budget = RetryBudget.token_bucket("burst", capacity=10_000, fleet=fleet)
        assert until(lambda: fleet.is_connected)

        @with_retry(max_retries=1, initial_delay=0.0, budget=budget)
        def fails_once(state):
            state["calls"] += 1
            if state["calls"] == 1:
                raise ConnectionError("reset")
            return "ok"

        def one(_):
            try:
                return fails_once({"calls": 0})
            except RetryExhaustedError:
                return "denied"

        # A process's first retry finds one retry's worth leased; it nudges
        # the fleet's thread, which tops the lease up in a round trip.
        one(0)
        assert until(lambda: budget.level >= min(fleet_lease, 10_000) - 10), budget.level

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            return list(pool.map(one, range(200))).count("denied"), budget

    # (With the default lease, 20 tokens, most of these retries are denied:
    # 4 retries' worth per refresh.)

    denied, budget = denied_in_a_burst(Fleet(redis_url, refresh=REFRESH, budget_lease=2_000), 2_000)
    assert denied == 0 and budget.denied == 0


def test_a_throttle_in_one_process_slows_the_others_pace(redis_url):
    fleet = Fleet(redis_url, refresh=REFRESH)
    pacer = Pacer("fleet-s3-puts", initial_rate=100.0, fleet=fleet)
    assert until(lambda: fleet.is_connected)
    child = worker(
        redis_url,
        """
        class SlowDown(Exception):
            response = {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}

        pacer = Pacer("fleet-s3-puts", initial_rate=100.0, fleet=fleet)
        def put():
            raise SlowDown("SlowDown")
        try:
            with_s3_retry(pacer=pacer, max_attempts=1)(put)()
        except RetryExhaustedError:
            pass
        import time
        end = time.monotonic() + 10  # the fleet's thread carries the throttle to Redis and back
        while pacer.rate == 100.0 and time.monotonic() < end:
            time.sleep(0.002)
        print(pacer.rate, flush=True)
        """,
    )
    try:
        throttled_rate = float(child.said[0])
        assert throttled_rate < 100.0
        # This process saw no throttle; it follows the fleet's rate.
        assert until(lambda: pacer.rate is not None and pacer.rate < 100.0), pacer.rate
    finally:
        finish(child)


def test_without_redis_the_guards_work_alone():
    with socket_port() as port:
        pass
    fleet = Fleet(f"redis://127.0.0.1:{port}/", timeout=0.01, refresh=REFRESH)
    breaker = CircuitBreaker("alone", CircuitBreakerConfiguration(failure_threshold=1), fleet=fleet)
    pacer = Pacer("alone", fleet=fleet)
    assert not fleet.is_connected
    breaker.allow_request()
    breaker.record_failure()
    assert breaker.state == CircuitState.OPEN and pacer.rate is None


def test_a_stalled_redis_never_holds_up_a_decorated_call():
    # A "Redis" that accepts connections and never answers.
    import socket as sockets
    import time

    stalled = sockets.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(16)
    try:
        fleet = Fleet(f"redis://127.0.0.1:{stalled.getsockname()[1]}/", timeout=0.05, refresh=REFRESH)
        breaker = CircuitBreaker("stalled", fleet=fleet)
        budget = RetryBudget.token_bucket("stalled", fleet=fleet)
        calls = []

        @with_retry(max_retries=2, initial_delay=0.0, breaker=breaker, budget=budget)
        def flaky():
            calls.append(1)
            if len(calls) < 3:
                raise ConnectionError("reset")
            return "ok"

        started = time.monotonic()
        for _ in range(20):
            calls.clear()
            assert flaky() == "ok"
        # Generous: a call that waited on Redis would wait its 50 ms step
        # limit each time, a second in all.
        assert time.monotonic() - started < 0.5, "calls waited on the stalled Redis"
    finally:
        stalled.close()


def test_bad_fleet_settings_name_the_setting_and_never_print_the_url():
    with pytest.raises(ValueError, match="refresh") as bad:
        Fleet("redis://:secret@127.0.0.1:6379/", refresh=0.001)
    assert "secret" not in str(bad.value)
    with pytest.raises(ValueError, match="timeout is -1"):
        Fleet("redis://127.0.0.1:6379/", timeout=-1)
    with pytest.raises(ValueError) as url:
        Fleet("http://:secret@nowhere/")
    assert "secret" not in str(url.value)
    with pytest.raises(TypeError, match="fleet must be a Fleet, not str"):
        CircuitBreaker("x", fleet="redis://127.0.0.1:6379/")


def socket_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))

    class Port:
        def __enter__(self):
            return s.getsockname()[1]

        def __exit__(self, *exc):
            s.close()

    return Port()
