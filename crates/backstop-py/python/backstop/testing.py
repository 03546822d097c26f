"""Testing your own retrying code in milliseconds: virtual time.

::

    from backstop.testing import virtual_time

    with virtual_time() as clock:
        flaky_upload()               # retried: no real sleep
    assert clock.sleeps == [1.0, 2.0]  # the delays slept, in seconds (no jitter)

Under ``virtual_time()`` every run (in any thread) sleeps on one virtual
clock: nothing waits, time jumps ahead by each delay, and ``clock.sleeps``
lists them.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Optional

from ._backstop import VirtualClock

__all__ = ["VirtualClock", "virtual_time"]

_lock = threading.Lock()
_current: Optional[VirtualClock] = None


def current_clock() -> Optional[VirtualClock]:
    """The virtual clock runs sleep on now, or ``None`` for the real one."""
    return _current


@contextlib.contextmanager
def virtual_time() -> Iterator[VirtualClock]:
    """Runs started inside the block sleep in virtual time; yields the clock."""
    global _current
    clock = VirtualClock()
    with _lock:
        previous, _current = _current, clock
    try:
        yield clock
    finally:
        with _lock:
            _current = previous
