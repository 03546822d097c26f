"""The `pacer_rule` replay through botocore's own adaptive limiter.

One client wanting 50 calls a second for 60 s against a server that accepts
25 in any sliding second, in virtual time, through botocore's
``ClientRateLimiter`` (its ``RateClocker``, ``CubicCalculator`` and
``TokenBucket``, unchanged). Prints the line `pacer_rule` prints for its
port (``backstop_bench::botocore``), to check the port against botocore:

    python3 crates/backstop-bench/botocore_replay.py [--trace]

Needs botocore (``pip install botocore``; scripts/test-python.sh's
virtualenv has it).
"""

import collections
import sys

from botocore.exceptions import CapacityNotAvailableError
from botocore.retries import adaptive, bucket, throttling

WANTED_PER_SEC, ACCEPTED_PER_SEC, RUN, SETTLED_FROM = 50, 25, 60.0, 30.0
EPOCH = 1000.0


class Clock:
    def __init__(self):
        self.t = EPOCH

    def current_time(self):
        return self.t

    def sleep(self, amount):
        self.t += amount


class Detector:
    """Tells the limiter whether the answer was a refusal."""

    refused = False

    def is_throttling_error(self, **kwargs):
        return self.refused


def main():
    trace = "--trace" in sys.argv
    clock = Clock()
    detector = Detector()
    tokens = bucket.TokenBucket(max_rate=1, clock=clock)
    limiter = adaptive.ClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
        rate_clocker=adaptive.RateClocker(clock),
        token_bucket=tokens,
        throttling_detector=detector,
        clock=clock,
    )
    accepted = collections.deque()
    refusals = settled_ok = settled_refused = 0
    remembered = []
    wanted_at = 0.0
    while clock.t - EPOCH < RUN:
        clock.t = max(clock.t, EPOCH + wanted_at)
        # ClientRateLimiter.on_sending_request, with the bucket's blocking
        # wait done on the virtual clock.
        while limiter._enabled:
            try:
                tokens.acquire(block=False)
                break
            except CapacityNotAvailableError:
                # (at least 1 ns: a float just short of a token would not move the clock)
                clock.sleep(max(tokens._sleep_amount(1), 1e-9))
        now = clock.t - EPOCH
        while accepted and now - accepted[0] >= 1.0:
            accepted.popleft()
        refused = len(accepted) >= ACCEPTED_PER_SEC
        if not refused:
            accepted.append(now)
        detector.refused = refused
        limiter.on_receiving_response()
        if now >= SETTLED_FROM:
            if refused:
                settled_refused += 1
            else:
                settled_ok += 1
        if refused:
            refusals += 1
            w_max = limiter._rate_adjustor.get_params_snapshot().w_max
            remembered.append((now, w_max))
            if trace:
                print(f"botocore: refusal {refusals} at {now:.3f} s remembers {w_max:.2f}/s")
        wanted_at += 1.0 / WANTED_PER_SEC
    settled = [r for t, r in remembered if t >= SETTLED_FROM]
    mean = sum(settled) / max(1, len(settled))
    share = settled_refused / max(1, settled_ok + settled_refused)
    print(
        f"| botocore {__import__('botocore').__version__} itself | {refusals} | {settled_ok / (RUN - SETTLED_FROM):.1f} "
        f"| {share * 100:.1f} % | {mean:.1f} | {min(settled, default=0):.1f}–{max(settled, default=0):.1f} |"
    )


if __name__ == "__main__":
    main()
