"""backstop: retries with backoff and jitter for Python, on backstop's Rust core.

The specification's APIs, importable as written::

    from backstop import RetryPolicy, with_retry, retry_call, create_batch_retry_wrapper
"""

from ._policy import RetryExhaustedError, RetryPolicy, create_batch_retry_wrapper, retry_call, with_retry

__all__ = [
    "RetryExhaustedError",
    "RetryPolicy",
    "create_batch_retry_wrapper",
    "retry_call",
    "with_retry",
]
