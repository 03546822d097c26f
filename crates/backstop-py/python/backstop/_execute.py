"""``execute``: document 004's batch runner, so its examples run as written
(``from backstop import with_retry, execute``).

Document 004 came from amorsize, whose ``execute`` picks a parallelism for
the batch. backstop's is a plain thread pool, the right shape for the
I/O-bound calls it retries (a retrying call's backoff sleeps with the GIL
released, so the pool's other threads go on meanwhile)."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from typing import Callable, Iterable, List, Optional, TypeVar

from ._callables import is_async

__all__ = ["execute"]

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger("backstop")


def execute(
    func: Callable[[T], R], data: Iterable[T], verbose: bool = False, max_workers: Optional[int] = None
) -> List[R]:
    """``[func(item) for item in data]``, the calls made on up to
    ``max_workers`` threads (default: one per item, at most 8), the results
    in the order of ``data``. The first item that raises (in that order)
    raises out of ``execute``; items not yet started are cancelled. With
    ``verbose``, one INFO line on the ``backstop`` logger says how many items
    ran and how long they took."""
    if not callable(func):
        raise TypeError(f"execute needs a function, not {type(func).__name__}")
    if is_async(func):
        raise TypeError(
            f"execute runs sync functions on threads; {getattr(func, '__qualname__', func)} is async: "
            "await asyncio.gather(*(func(item) for item in data)) instead"
        )
    items = list(data)
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1):
        raise ValueError(f"max_workers is {max_workers!r}; allowed: 1 or more threads")
    if not items:
        return []
    started = time.monotonic()
    workers = max_workers or min(8, len(items))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backstop-execute") as pool:
        futures = [pool.submit(func, item) for item in items]
        try:
            results = [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    if verbose:
        _log.info(
            "execute: %d items on %d threads in %.2f seconds",
            len(items), workers, time.monotonic() - started,
        )
    return results
