from typing import Any, Callable, Mapping, Optional, Tuple

class Schedule:
    def __init__(
        self,
        max_attempts: int,
        base: float,
        max: float,
        factor: float,
        jitter: str,
        names: Optional[Mapping[str, str]] = ...,
    ) -> None: ...
    @property
    def max_attempts(self) -> int: ...
    def nominal(self, retry: int) -> float: ...
    def delay(self, retry: int, sample: float) -> float: ...

class VirtualClock:
    def __init__(self) -> None: ...
    @property
    def sleeps(self) -> list[float]: ...
    @property
    def now(self) -> float: ...
    def advance(self, seconds: float) -> None: ...

def run(
    schedule: Schedule,
    func: Callable[..., Any],
    args: Tuple[Any, ...],
    kwargs: Optional[Mapping[str, Any]],
    retryable: Callable[[BaseException], bool],
    on_retry: Optional[Callable[[BaseException, int, float], Any]],
    exhausted: Callable[[BaseException, int], BaseException],
    name: str,
    clock: Optional[VirtualClock] = ...,
) -> Any: ...
