"""The decorated success path and a run with three failures at zero delay,
backstop against tenacity and stamina, in one process (a benchmark, not a
test). Run it with the package and the peers installed in one virtualenv:

    target/py-venv/bin/python -m pip install tenacity stamina tenacity-rs
    target/py-venv/bin/python crates/backstop-py/bench/decorated_calls.py

Prints microseconds per call (best of 5 timings of N calls each).
"""

from __future__ import annotations

import timeit

from backstop import CircuitBreaker, RetryBudget, RetryPolicy, with_retry

N = 100_000


def best(stmt, n=N) -> float:
    return min(timeit.repeat(stmt, number=n, repeat=5)) / n * 1e6


def plain():
    return 1


def failing_three_times():
    state = {"n": 0}

    def op():
        state["n"] += 1
        if state["n"] % 4:
            raise ConnectionError("down")
        return 1

    return op


rows = []
rows.append(("undecorated call", best(plain)))

ours = with_retry(policy=RetryPolicy(max_retries=4, initial_delay=0.0, jitter=False))(plain)
rows.append(("backstop with_retry", best(ours)))
breaker = CircuitBreaker("bench")
guarded = breaker(ours)
rows.append(("backstop with_retry, then @breaker", best(guarded)))
attached = with_retry(
    policy=RetryPolicy(max_retries=4, initial_delay=0.0, jitter=False),
    breaker=CircuitBreaker("bench-attached"),
    budget=RetryBudget("bench"),
)(plain)
rows.append(("backstop with_retry(breaker=, budget=)", best(attached)))
ours_fail = with_retry(policy=RetryPolicy(max_retries=4, initial_delay=0.0, jitter=False))(failing_three_times())
rows.append(("backstop, 3 failures at zero delay", best(ours_fail, N // 10)))

try:
    import tenacity

    ten = tenacity.retry(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_none())(plain)
    rows.append(("tenacity", best(ten)))
    ten_fail = tenacity.retry(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_none())(failing_three_times())
    rows.append(("tenacity, 3 failures at zero delay", best(ten_fail, N // 10)))
except ImportError:
    pass

try:
    import tenacity_rs

    ten_rs = tenacity_rs.retry(stop=tenacity_rs.stop_after_attempt(5), wait=tenacity_rs.wait_none())(plain)
    rows.append(("tenacity-rs", best(ten_rs)))
    ten_rs_fail = tenacity_rs.retry(stop=tenacity_rs.stop_after_attempt(5), wait=tenacity_rs.wait_none())(
        failing_three_times()
    )
    rows.append(("tenacity-rs, 3 failures at zero delay", best(ten_rs_fail, N // 10)))
except ImportError:
    pass

try:
    import stamina

    stam = stamina.retry(on=ConnectionError, attempts=5, wait_initial=0, wait_max=0, wait_jitter=0)(plain)
    rows.append(("stamina", best(stam)))
except ImportError:
    pass

width = max(len(name) for name, _ in rows)
for name, us in rows:
    print(f"{name:<{width}}  {us:8.3f} µs")
