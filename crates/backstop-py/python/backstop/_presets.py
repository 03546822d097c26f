"""The pipeline's retry module (the specification's documents 000 and 002):
``RetryConfiguration``, ``RetryPresets``, ``with_s3_retry`` and
``with_api_retry``.

The presets' numbers are the core's presets; the verdict for an exception is
the core's rule, asked with the facts read off it: a botocore ``ClientError``'s
error code, status and hint headers (``backstop._backstop.aws_verdict``), a
requests or httpx error's status, ``Retry-After`` and request method
(``http_verdict``, ``may_send_twice``). The classes are matched by name, so
neither botocore nor requests nor httpx is imported here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple, Type, TypeVar, Union

from . import _backstop
from ._checks import count, number
from ._guards import clock_rule, run_guards
from ._run import exception_types, retrying

__all__ = ["RetryConfiguration", "RetryPresets", "with_api_retry", "with_s3_retry"]

F = TypeVar("F", bound=Callable[..., Any])
Verdict = Union[str, float]

_NAMES = {
    "max_attempts": "max_attempts",
    "backoff.base": "base_delay",
    "backoff.max_delay": "max_delay",
    "backoff.factor": "exponential_base",
}


@dataclass(frozen=True)
class RetryConfiguration:
    """A retry configuration (document 002's table; the defaults are the
    S3 preset's): ``max_attempts`` in all, ``base_delay`` seconds growing by
    ``exponential_base`` up to ``max_delay``, plus up to ``jitter`` seconds at
    random. Exceptions of ``retry_on_exceptions`` are retried besides those
    the decorator's classifier retries; those of ``ignore_on_exceptions``
    never are."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    exponential_base: float = 2.0
    jitter: float = 1.0
    retry_on_exceptions: Tuple[Type[BaseException], ...] = ()
    ignore_on_exceptions: Tuple[Type[BaseException], ...] = ()
    _schedule: Any = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        count("max_attempts", self.max_attempts, "retry policy")
        for name in ("base_delay", "max_delay", "exponential_base", "jitter"):
            number(name, getattr(self, name))
        if not 0 <= self.jitter < float("inf"):
            raise ValueError(f"invalid retry policy: jitter is {self.jitter}; allowed: 0 or more seconds")
        for name in ("retry_on_exceptions", "ignore_on_exceptions"):
            object.__setattr__(self, name, exception_types(name, getattr(self, name)))
        jitter = f"additive:{float(self.jitter):.9f}s" if self.jitter else "none"
        schedule = _backstop.Schedule(
            self.max_attempts, float(self.base_delay), float(self.max_delay), float(self.exponential_base), jitter, _NAMES
        )
        object.__setattr__(self, "_schedule", schedule)

    def replace(self, **overrides: Any) -> "RetryConfiguration":
        """This configuration with ``overrides`` (a ``TypeError`` names an unknown one)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self) if f.init}
        if unknown:
            raise TypeError(f"unknown RetryConfiguration parameters: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)


def _from_preset(name: str) -> RetryConfiguration:
    p = _backstop.Schedule.preset(name)
    return RetryConfiguration(p.max_attempts, p.base, p.max_delay, p.factor, p.additive_jitter)


class RetryPresets:
    """The core's presets as configurations: ``S3_UPLOAD`` and ``S3_DOWNLOAD``
    (5 attempts, 1 s doubling to 30 s, plus up to 1 s), ``API_CALL`` (3
    attempts, 0.5 s doubling to 10 s, plus up to 0.5 s)."""

    S3_UPLOAD = _from_preset("s3_upload")
    S3_DOWNLOAD = _from_preset("s3_download")
    API_CALL = _from_preset("api_call")


def _names(exc: BaseException) -> set:
    return {cls.__name__ for cls in type(exc).__mro__}


# botocore's transport failures, by class name (never imported here).
_AWS_TIMEOUTS = {"ReadTimeoutError", "ConnectTimeoutError"}
_AWS_TRANSIENT = {"EndpointConnectionError", "ConnectionClosedError", "ResponseStreamingError", "IncompleteReadError"}


def _aws_response(exc: BaseException) -> Optional[dict]:
    """The parsed AWS response of a botocore ``ClientError``: of ``exc``, or
    of the one it was raised from or while handling (boto3's ``upload_file``
    raises ``S3UploadFailedError`` from inside ``except ClientError``)."""
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 4:
        response = getattr(current, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return response
        current, seen = current.__cause__ or current.__context__, seen + 1
    return None


def s3_verdict(exc: BaseException, config: RetryConfiguration = RetryPresets.S3_UPLOAD) -> Verdict:
    """The core's verdict for an exception of an S3 call (see the module docs)."""
    if isinstance(exc, config.ignore_on_exceptions):
        return "fail"
    response = _aws_response(exc)
    if response is not None:
        error = response.get("Error") or {}
        meta = response.get("ResponseMetadata") or {}
        headers = {str(k).lower(): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
        status = int(meta.get("HTTPStatusCode") or 0)
        return _backstop.aws_verdict(
            error.get("Code"), status, headers.get("x-amz-retry-after"), headers.get("retry-after"), headers.get("date")
        )
    names = _names(exc)
    if names & _AWS_TIMEOUTS or isinstance(exc, TimeoutError):
        return "timeout"
    if names & _AWS_TRANSIENT or isinstance(exc, ConnectionError):
        return "retry"
    if isinstance(exc, config.retry_on_exceptions):
        return "retry"
    return "fail"


# requests' and httpx's transport failures, by class name.
_HTTP_CONNECT = {"ConnectTimeout", "ConnectError"}  # nothing reached the server
_HTTP_TIMEOUTS = {"Timeout", "ReadTimeout", "TimeoutException", "WriteTimeout", "PoolTimeout"}
_HTTP_TRANSIENT = {"ConnectionError", "ChunkedEncodingError", "TransportError", "RemoteProtocolError", "ReadError"}


def api_verdict(
    exc: BaseException, config: RetryConfiguration = RetryPresets.API_CALL, respect_retry_after: bool = True
) -> Verdict:
    """The core's verdict for an exception of an HTTP call (see the module
    docs). A request whose method is not idempotent (POST, PATCH) and that
    has no ``Idempotency-Key`` is not retried once it may have reached the
    server; one refused before connecting is."""
    if isinstance(exc, config.ignore_on_exceptions):
        return "fail"
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    names = _names(exc)
    reached_server = True
    if isinstance(status, int):
        headers = getattr(response, "headers", None) or {}
        # Not respecting the hint: the core judges the status as if the
        # server had given none.
        retry_after = headers.get("Retry-After") if respect_retry_after else None
        verdict: Verdict = _backstop.http_verdict(status, retry_after, headers.get("Date"))
    elif names & _HTTP_CONNECT:
        verdict, reached_server = "retry", False
    elif names & _HTTP_TIMEOUTS or isinstance(exc, TimeoutError):
        verdict = "timeout"
    elif names & _HTTP_TRANSIENT or isinstance(exc, ConnectionError):
        verdict = "retry"
    elif isinstance(exc, config.retry_on_exceptions):
        verdict = "retry"
    else:
        return "fail"
    if verdict != "fail" and reached_server:
        request = getattr(exc, "request", None) or getattr(response, "request", None)
        method = getattr(request, "method", None)
        headers = getattr(request, "headers", None) or {}
        if method and not _backstop.may_send_twice(str(method), "Idempotency-Key" in headers):
            return "fail"
    return verdict


def _decorator(
    preset: RetryConfiguration,
    verdict: Callable[[BaseException, RetryConfiguration], Verdict],
    overrides: dict,
    breaker: Any = None,
    budget: Any = None,
    pacer: Any = None,
) -> Callable[[F], F]:
    if not isinstance(preset, RetryConfiguration):
        raise TypeError(f"config must be a RetryConfiguration, not {type(preset).__name__}")
    config = preset.replace(**overrides) if overrides else preset
    guards, rule = run_guards(breaker, budget, pacer), clock_rule(breaker, budget, pacer)

    def decorate(func: F) -> F:
        return retrying(func, config._schedule, judge=lambda exc: verdict(exc, config), guards=guards, clock_rule=rule)

    return decorate


def with_s3_retry(
    config: Optional[RetryConfiguration] = None,
    *,
    breaker: Any = None,
    budget: Any = None,
    pacer: Any = None,
    **overrides: Any,
) -> Callable[[F], F]:
    """Retries an S3 call with ``RetryPresets.S3_UPLOAD`` (or ``config``),
    ``overrides`` applied (``max_attempts=5, base_delay=1.0, max_delay=30.0``):
    throttling (``SlowDown``, ``ThrottlingException``, ...), ``InternalError``,
    5xx, connection failures and timeouts are retried, with S3's hints;
    ``AccessDenied``, ``NoSuchKey``, ``NoSuchBucket`` and other 4xx are raised at
    once. Switch boto3's own retries off so attempts do not multiply:
    ``boto3.client("s3", config=botocore.config.Config(retries={"total_max_attempts": 1}))``.
    ``breaker=``, ``budget=`` and ``pacer=`` attach guards (see ``with_retry``);
    S3's ``SlowDown`` slows a ``Pacer`` down."""
    return _decorator(config if config is not None else RetryPresets.S3_UPLOAD, s3_verdict, overrides, breaker, budget, pacer)


def with_api_retry(
    respect_retry_after: bool = True,
    config: Optional[RetryConfiguration] = None,
    *,
    breaker: Any = None,
    budget: Any = None,
    pacer: Any = None,
    **overrides: Any,
) -> Callable[[F], F]:
    """Retries an HTTP API call (requests or httpx) with
    ``RetryPresets.API_CALL`` (or ``config``), ``overrides`` applied: 5xx,
    429, 408, connection errors and timeouts are retried, other 4xx raised at
    once; a ``Retry-After`` is honoured as a floor (up to 60 s) when
    ``respect_retry_after``. Raise for the status in the function
    (``response.raise_for_status()``) so the error carries the response."""

    def verdict(exc: BaseException, config: RetryConfiguration) -> Verdict:
        return api_verdict(exc, config, respect_retry_after)

    return _decorator(config if config is not None else RetryPresets.API_CALL, verdict, overrides, breaker, budget, pacer)
