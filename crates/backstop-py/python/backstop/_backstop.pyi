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
    @staticmethod
    def preset(name: str) -> "Schedule": ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def base(self) -> float: ...
    @property
    def max_delay(self) -> float: ...
    @property
    def factor(self) -> float: ...
    @property
    def jitter(self) -> str: ...
    @property
    def additive_jitter(self) -> float: ...
    def nominal(self, retry: int) -> float: ...
    def delay(self, retry: int, sample: float) -> float: ...

class VirtualClock:
    def __init__(self) -> None: ...
    @property
    def sleeps(self) -> list[float]: ...
    @property
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def advance(self, seconds: float) -> None: ...

Verdict = "bool | str | float"

def register_exceptions(
    exhausted: Callable[[BaseException, int], BaseException], circuit_open: Callable[[str, str], BaseException]
) -> None: ...
def run(
    schedule: Schedule,
    func: Callable[..., Any],
    args: Tuple[Any, ...],
    kwargs: Optional[Mapping[str, Any]],
    retryable: Callable[[BaseException], Verdict],
    on_retry: Optional[Callable[[BaseException, int, float], Any]],
    name: str,
    clock: Optional[VirtualClock] = ...,
    guards: Optional["RunGuards"] = ...,
) -> Any: ...

class AsyncRun:
    def __init__(
        self,
        schedule: Schedule,
        retryable: Callable[[BaseException], Verdict],
        on_retry: Optional[Callable[[BaseException, int, float], Any]],
        name: str,
        clock: Optional[VirtualClock] = ...,
        guards: Optional["RunGuards"] = ...,
    ) -> None: ...
    def start(self) -> Optional[float]: ...
    def resume(self) -> Optional[float]: ...
    def failed(self, exc: BaseException) -> Optional[float]: ...
    def succeeded(self) -> None: ...
    def close(self) -> None: ...

class Budget:
    @staticmethod
    def token_bucket(
        name: str,
        capacity: Optional[int] = ...,
        retry_cost: Optional[int] = ...,
        timeout_cost: Optional[int] = ...,
        refill_per_sec: Optional[float] = ...,
        clock: Optional[VirtualClock] = ...,
        fleet: Optional["Fleet"] = ...,
    ) -> "Budget": ...
    @staticmethod
    def ratio(
        name: str,
        ratio: Optional[float] = ...,
        window: Optional[float] = ...,
        min_per_sec: Optional[float] = ...,
        clock: Optional[VirtualClock] = ...,
    ) -> "Budget": ...
    @property
    def name(self) -> str: ...
    @property
    def level(self) -> float: ...
    @property
    def denied(self) -> int: ...

class Pace:
    def __init__(
        self,
        name: str,
        initial_rate: Optional[float] = ...,
        min_rate: Optional[float] = ...,
        max_rate: Optional[float] = ...,
        burst: Optional[int] = ...,
        clock: Optional[VirtualClock] = ...,
        fleet: Optional["Fleet"] = ...,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def rate(self) -> Optional[float]: ...

class RunGuards:
    def __init__(
        self, breaker: Optional["Breaker"] = ..., budget: Optional[Budget] = ..., pacer: Optional[Pace] = ...
    ) -> None: ...

class Breaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int,
        recovery_timeout: float,
        success_threshold: int,
        clock: Optional[VirtualClock] = ...,
        fleet: Optional["Fleet"] = ...,
    ) -> None: ...
    def allow_request(self) -> bool: ...
    def record_success(self) -> None: ...
    def record_failure(self) -> None: ...
    def release(self) -> None: ...
    @property
    def state(self) -> str: ...
    @property
    def name(self) -> str: ...
    def isolate(self) -> None: ...
    def reset(self) -> None: ...

def aws_verdict(
    code: Optional[str],
    status: int,
    amz_retry_after: Optional[str] = ...,
    retry_after: Optional[str] = ...,
    date: Optional[str] = ...,
) -> "str | float": ...
def http_verdict(status: int, retry_after: Optional[str] = ..., date: Optional[str] = ...) -> "str | float": ...
def is_idempotent(method: str) -> bool: ...

class Fleet:
    def __init__(
        self,
        url: str,
        timeout: Optional[float] = ...,
        refresh: Optional[float] = ...,
        reconnect_every: Optional[float] = ...,
        key_ttl: Optional[float] = ...,
        probe_lease: Optional[float] = ...,
    ) -> None: ...
    @property
    def is_connected(self) -> bool: ...
    def stats(self) -> Tuple[int, int, int, int]: ...
