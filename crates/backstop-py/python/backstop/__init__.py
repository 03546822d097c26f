"""backstop: retries with backoff and jitter for Python, on backstop's Rust core.

The specification's APIs, importable as written::

    from backstop import RetryPolicy, with_retry, retry_call, create_batch_retry_wrapper   # document 004
    from backstop import RetryConfig, DEFAULT_RETRY_CONFIG, with_retry, create_retry_decorator  # document 003

``with_retry`` and ``retry_call`` take both documents' call forms (see
``backstop._decorators``).
"""

from ._breaker import CircuitBreaker, CircuitBreakerConfiguration, CircuitOpenException, CircuitState
from ._config import DEFAULT_RETRY_CONFIG, RetryConfig
from ._fleet import Fleet
from ._guards import Pacer, RetryBudget
from ._execute import execute
from ._decorators import create_retry_decorator, retry_call, with_retry
from ._policy import RetryPolicy, create_batch_retry_wrapper
from ._presets import RetryConfiguration, RetryPresets, with_api_retry, with_s3_retry
from ._run import RetryExhaustedError
from ._s3 import retry_s3_download, retry_s3_upload

from . import _backstop

_backstop.register_exceptions(RetryExhaustedError, CircuitOpenException)

RetryExhaustedException = RetryExhaustedError
"""Document 000's name for ``RetryExhaustedError`` (``.attempts``, ``.last_exception``)."""

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerConfiguration",
    "CircuitOpenException",
    "CircuitState",
    "DEFAULT_RETRY_CONFIG",
    "Fleet",
    "Pacer",
    "RetryConfig",
    "RetryExhaustedError",
    "RetryExhaustedException",
    "RetryBudget",
    "RetryConfiguration",
    "RetryPresets",
    "RetryPolicy",
    "create_batch_retry_wrapper",
    "create_retry_decorator",
    "execute",
    "retry_call",
    "retry_s3_download",
    "retry_s3_upload",
    "with_api_retry",
    "with_retry",
    "with_s3_retry",
]
