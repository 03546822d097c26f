"""Document 004's API (``RetryPolicy``, ``with_retry``, ``retry_call``,
``create_batch_retry_wrapper``, ``RetryExhaustedError``): its code blocks as
written (``from backstop import`` for ``from amorsize import``; ``execute``,
amorsize's parallel map, is a plain map here), in virtual time."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from backstop import RetryExhaustedError, RetryPolicy, create_batch_retry_wrapper, retry_call, with_retry
from backstop.testing import virtual_time
from flaky import Flaky


def execute(func, data, verbose=False):
    return [func(x) for x in data]


def test_the_documented_progression_without_jitter():
    policy = RetryPolicy(initial_delay=0.1, exponential_base=2, jitter=False, max_retries=5)
    assert [policy.calculate_delay(a) for a in range(1, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert RetryPolicy(initial_delay=1, max_delay=3, jitter=False, max_retries=9).calculate_delay(9) == 3.0


def test_jitter_stays_within_a_quarter_either_side():
    policy = RetryPolicy(initial_delay=1.0, jitter=True)
    delays = [policy.calculate_delay(1) for _ in range(2000)]
    assert 0.75 <= min(delays) < 0.8 and 1.2 < max(delays) <= 1.25


def test_should_retry_counts_retries_and_exception_types():
    policy = RetryPolicy(max_retries=2, retry_on_exceptions=(ConnectionError,))
    assert policy.should_retry(ConnectionError(), 1) and policy.should_retry(ConnectionError(), 2)
    assert not policy.should_retry(ConnectionError(), 3)
    assert not policy.should_retry(ValueError(), 1)


def test_decorator_on_a_user_function():
    flaky = Flaky(2)

    @with_retry(max_retries=3)
    def my_function(x):
        return (flaky(), x)

    with virtual_time() as clock:
        assert execute(my_function, [7]) == [("ok", 7)]
    assert flaky.calls == 3 and len(clock.sleeps) == 2


def test_bare_decorator_keeps_metadata():
    @with_retry
    def documented():
        """Docs."""
        return 1

    assert documented() == 1
    assert documented.__name__ == "documented" and documented.__doc__ == "Docs."


def test_retry_call_with_args_kwargs_and_a_policy():
    flaky = Flaky(1)
    with virtual_time():
        assert retry_call(lambda x, y=0: (flaky(), x + y), args=(1,), kwargs={"y": 2}, max_retries=3) == ("ok", 3)
        policy = RetryPolicy(max_retries=1)
        assert retry_call(Flaky(1), policy=policy) == "ok"
    with pytest.raises(TypeError, match="not both"):
        retry_call(print, policy=policy, max_retries=2)


def test_batch_wrapper_fail_fast_and_not():
    policy = RetryPolicy(max_retries=1, initial_delay=0.01)

    def work(item):
        if item < 0:
            raise ConnectionError(f"item {item}")
        return item * 2

    with virtual_time():
        wrapper = create_batch_retry_wrapper(work, policy)
        assert [wrapper(item) for item in [1, 2]] == [2, 4]
        with pytest.raises(RetryExhaustedError):
            [wrapper(item) for item in [1, -1]]
        lenient = create_batch_retry_wrapper(work, policy, fail_fast=False)
        results = [lenient(item) for item in [1, -1, 3]]
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], RetryExhaustedError) and results[1].attempts == 2


def test_production_configuration_calls_on_retry_and_logs(caplog):
    logger = logging.getLogger("pipeline")
    seen = []
    policy = RetryPolicy(
        max_retries=5,
        initial_delay=0.5,
        max_delay=60.0,
        exponential_base=2.0,
        jitter=True,
        retry_on_exceptions=(ConnectionError, TimeoutError),
        on_retry=lambda exc, attempt, delay: (
            seen.append((type(exc).__name__, attempt, delay)),
            logger.warning(f"Retry {attempt} after {delay:.2f}s due to {type(exc).__name__}: {exc}"),
        ),
    )
    flaky = Flaky(2, TimeoutError("read timed out"))

    @with_retry(policy=policy)
    def production_api_call(item_id):
        return flaky()

    with caplog.at_level(logging.INFO), virtual_time() as clock:
        assert production_api_call(42) == "ok"
    assert [(name, attempt) for name, attempt, _ in seen] == [("TimeoutError", 1), ("TimeoutError", 2)]
    assert [delay for _, _, delay in seen] == pytest.approx(clock.sleeps)
    assert 0.375 <= seen[0][2] <= 0.625
    lines = [r.getMessage() for r in caplog.records if r.name == "backstop"]
    assert lines[0].startswith("Retrying production_api_call in ") and "(attempt 1/6): TimeoutError" in lines[0]
    assert lines[-1] == "production_api_call succeeded on attempt 3"


def test_selective_exceptions_raise_the_others_as_themselves():
    class RateLimitError(Exception):
        pass

    @with_retry(max_retries=5, retry_on_exceptions=(ConnectionError, TimeoutError, RateLimitError))
    def api_call(item):
        raise ValueError(f"bad item {item}")

    with virtual_time() as clock, pytest.raises(ValueError, match="bad item 3"):
        api_call(3)
    assert clock.sleeps == []
    limited = Flaky(2, RateLimitError("429"))
    with virtual_time() as clock:
        assert with_retry(max_retries=5, retry_on_exceptions=(ConnectionError, TimeoutError, RateLimitError))(limited)() == "ok"
    assert len(clock.sleeps) == 2, "a RateLimitError is retried"


def test_exhaustion_chains_the_last_exception():
    @with_retry(max_retries=2, initial_delay=0.1, jitter=False)
    def down():
        raise ConnectionError("refused")

    with virtual_time() as clock, pytest.raises(RetryExhaustedError) as info:
        down()
    assert info.value.attempts == 3
    assert isinstance(info.value.__cause__, ConnectionError)
    assert info.value.last_exception is info.value.__cause__ is info.value.original_exception
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_zero_retries_is_one_attempt():
    flaky = Flaky(5)
    with pytest.raises(RetryExhaustedError):
        with_retry(max_retries=0)(flaky)()
    assert flaky.calls == 1


def test_a_failing_callback_does_not_break_the_call(caplog):
    def broken(exc, attempt, delay):
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.WARNING), virtual_time():
        assert with_retry(max_retries=2, on_retry=broken)(Flaky(1))() == "ok"
    warnings = [r.getMessage() for r in caplog.records if r.name == "backstop" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "on_retry callback failed" in warnings[0] and "callback bug" in warnings[0]


@pytest.mark.parametrize(
    "params, error, text",
    [
        ({"max_retries": -1}, ValueError, "max_retries is -1; allowed: a whole number from 0 to 4294967294"),
        ({"max_retries": 2.5}, TypeError, "max_retries must be an int"),
        ({"exponential_base": 0.5}, ValueError, "exponential_base is 0.5; allowed:"),
        ({"initial_delay": 5, "max_delay": 1}, ValueError, "initial_delay is 5s, above max_delay 1s"),
        ({"initial_delay": -1}, ValueError, "initial_delay is -1"),
        ({"max_delay": float("nan")}, ValueError, "max_delay is NaN"),
        ({"retry_on_exceptions": (ValueError, 3)}, TypeError, "retry_on_exceptions must hold exception classes"),
        ({"on_retry": 3}, TypeError, "on_retry must be callable"),
    ],
)
def test_bad_input_names_the_parameter(params, error, text):
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        RetryPolicy(**params)


def test_ctrl_c_during_a_backoff_raises_at_once():
    script = textwrap.dedent(
        """
        import sys
        from backstop import with_retry

        @with_retry(max_retries=3, initial_delay=30, jitter=False)
        def down():
            print("attempt", flush=True)
            raise ConnectionError("down")

        try:
            down()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "attempt"
    time.sleep(0.2)  # into the 30 s backoff
    started = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=10)
    assert child.returncode == 3 and "interrupted" in out
    assert time.monotonic() - started < 5


def test_levels_set_on_the_backstop_logger_take_effect_at_once(caplog):
    logger = logging.getLogger("backstop")
    flaky = Flaky(1)
    call = with_retry(max_retries=2, initial_delay=0.5)(flaky)
    caplog.set_level(logging.DEBUG)
    try:
        logger.setLevel(logging.WARNING)
        with virtual_time():
            call()
        assert not [r for r in caplog.records if r.name == "backstop"]
        logger.setLevel(logging.INFO)  # between two calls of the same decorated function
        flaky.calls = 0
        with virtual_time():
            call()
        lines = [r.getMessage() for r in caplog.records if r.name == "backstop"]
        assert lines[0].startswith("Retrying operation in "), lines  # a callable object has no __name__
        assert lines[0].endswith("(attempt 1/3): ConnectionError: connection reset"), lines
        assert lines[-1].endswith("succeeded on attempt 2"), lines
    finally:
        logger.setLevel(logging.NOTSET)


BASIC_USAGE = """
from backstop import with_retry, execute

@with_retry(max_retries=3, initial_delay=0.1)
def fetch_data(url):
    return requests.get(url).json()

results = execute(fetch_data, urls, verbose=True)
"""

PRODUCTION = """
from backstop import RetryPolicy, with_retry

# Define production retry policy
policy = RetryPolicy(
    max_retries=5,
    initial_delay=0.5,
    max_delay=60.0,
    exponential_base=2.0,
    jitter=True,
    retry_on_exceptions=(ConnectionError, TimeoutError, HTTPError),
    on_retry=lambda exc, attempt, delay: logger.warning(
        f"Retry {attempt} after {delay:.2f}s due to {type(exc).__name__}: {exc}"
    )
)

@with_retry(policy=policy)
def production_api_call(item_id):
    response = requests.get(f"https://api.example.com/{item_id}", timeout=30)
    response.raise_for_status()
    return response.json()

# Execute with automatic parallelization + retry
results = execute(production_api_call, item_ids, verbose=True)
"""


def test_basic_usage_with_execute_as_document_004_writes_it(fault_server, caplog):
    import requests

    from servers import RESET

    fault_server.fail(2, RESET)
    fault_server.body = b'{"ok": true}'
    urls = [f"{fault_server.url}/items/{i}" for i in range(5)]
    scope = {"requests": requests, "urls": urls}
    with caplog.at_level(logging.INFO), virtual_time() as clock:
        exec(BASIC_USAGE, scope)
    assert scope["results"] == [{"ok": True}] * 5
    assert fault_server.hits() == 7 and len(clock.sleeps) == 2
    assert any(r.getMessage().startswith("execute: 5 items on 5 threads in ") for r in caplog.records)


def test_the_production_configuration_as_document_004_writes_it(fault_server, caplog):
    import requests

    fault_server.fail(2, (503, {}, b"busy"))
    fault_server.body = b'{"id": 1}'
    scope = {
        "requests": requests,
        "HTTPError": requests.HTTPError,
        "logger": logging.getLogger("pipeline"),
        "item_ids": [1, 2, 3],
        "execute": __import__("backstop").execute,
    }
    with caplog.at_level(logging.INFO), virtual_time() as clock:
        exec(PRODUCTION.replace("https://api.example.com", fault_server.url), scope)
    assert scope["results"] == [{"id": 1}] * 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "pipeline"]
    assert len(warnings) == 2 and warnings[0].startswith("Retry 1 after ") and "due to HTTPError: 503" in warnings[0]
    assert len(clock.sleeps) == 2


def test_execute_keeps_order_raises_the_first_failure_and_checks_its_workers():
    from backstop import execute

    assert execute(lambda x: x * x, range(20), max_workers=3) == [x * x for x in range(20)]
    assert execute(str, []) == []

    def fails_on_three(x):
        if x == 3:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError):
        execute(fails_on_three, range(6))
    with pytest.raises(ValueError, match="max_workers is 0"):
        execute(str, [1], max_workers=0)


def test_a_decorated_method_is_retried_with_its_instance():
    class Uploader:
        def __init__(self) -> None:
            self.calls = 0

        @with_retry(max_retries=3, initial_delay=0.5)
        def upload(self, key: str) -> str:
            self.calls += 1
            if self.calls < 3:
                raise ConnectionError("reset")
            return key

    uploader = Uploader()
    with virtual_time() as clock:
        assert uploader.upload("day.csv") == "day.csv"
    assert uploader.calls == 3 and len(clock.sleeps) == 2
    assert Uploader.upload.__name__ == "upload"


def test_other_threads_run_python_while_a_run_sleeps():
    # The sleep between attempts releases the GIL: a thread counting in
    # Python gets on with it during a real 50 ms backoff.
    import threading

    counted, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counted[0] += 1

    calls = []

    @with_retry(max_retries=1, initial_delay=0.05, jitter=False)
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            before.append(counted[0])
            raise ConnectionError("reset")
        return counted[0]

    before: list = []
    counter = threading.Thread(target=count)
    counter.start()
    try:
        after = flaky()
    finally:
        stop.set()
        counter.join()
    assert after - before[0] > 1000, (before, after)
