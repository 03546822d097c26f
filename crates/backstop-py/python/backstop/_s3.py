"""Document 000's S3 helpers: ``retry_s3_upload`` and ``retry_s3_download``,
a boto3 client's upload and download retried with the S3 presets.

boto3 retries on its own (3 attempts in its default mode, 5 in AWS's
"standard" mode): under backstop's 5 attempts that would make up to 25
requests, with two backoffs fighting. The helpers switch boto3's retries off
for their own calls: a client already configured with one attempt
(``Config(retries={"total_max_attempts": 1})``) is used as it is; any other
is used through a view of it (made once, kept while the client lives) whose
requests skip botocore's retry step and nothing else: the client's
credentials, endpoint, settings, event hooks and a ``botocore.stub.Stubber``
activated on it all apply. Your client is not changed.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Optional, Union

from ._presets import RetryConfiguration, RetryPresets, _decorator, s3_verdict

__all__ = ["retry_s3_download", "retry_s3_upload", "single_attempt_client"]

_views: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _retries_off(client: Any) -> bool:
    retries = getattr(client.meta.config, "retries", None) or {}
    return retries.get("total_max_attempts") == 1 or retries.get("max_attempts") == 0


def single_attempt_client(client: Any) -> Any:
    """``client`` if boto3's own retries are off on it, otherwise its
    single-attempt view (see the module docs)."""
    meta = getattr(client, "meta", None)
    if meta is None or not hasattr(meta, "events") or not hasattr(client, "_endpoint"):
        raise TypeError(f"client must be a boto3 S3 client, not {type(client).__name__}")
    if _retries_off(client):
        return client
    with _lock:
        view = _views.get(client)
        if view is None:
            view = _views[client] = _single_attempt_view(client)
    return view


class _NoRetryEvents:
    """An endpoint's event emitter that hands every event to the client's
    own emitter but ``needs-retry``, which botocore's retry handler answers
    (with no handler, a failed request is not sent again)."""

    def __init__(self, emitter: Any) -> None:
        self._emitter = emitter

    def emit(self, event_name: str, **kwargs: Any) -> Any:
        if event_name.startswith("needs-retry"):
            return []
        return self._emitter.emit(event_name, **kwargs)

    def emit_until_response(self, event_name: str, **kwargs: Any) -> Any:
        if event_name.startswith("needs-retry"):
            return None, None
        return self._emitter.emit_until_response(event_name, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "_emitter":  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self._emitter, name)


def _single_attempt_view(client: Any) -> Any:
    # A shallow copy shares everything with the client (its meta and event
    # hooks, signer, config, parsers) but its endpoint, which botocore asks
    # whether to send a failed request again: the copy's endpoint asks no one.
    # (By hand: botocore's clients answer unknown attributes through
    # events, which copy.copy's probing of a half-made object loops on.)
    view, endpoint = _shallow_copy(client), _shallow_copy(client._endpoint)
    endpoint._event_emitter = _NoRetryEvents(client._endpoint._event_emitter)
    view._endpoint = endpoint
    return view


def _shallow_copy(obj: Any) -> Any:
    twin = object.__new__(type(obj))
    twin.__dict__.update(obj.__dict__)
    return twin


def retry_s3_upload(
    client: Any,
    bucket: str,
    key: str,
    data: Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"],
    config: Optional[RetryConfiguration] = None,
    **overrides: Any,
) -> str:
    """Uploads ``data`` (bytes, or the path of a file) to ``s3://bucket/key``
    with ``RetryPresets.S3_UPLOAD`` (or ``config``; ``overrides`` such as
    ``max_attempts=3`` applied) and boto3's own retries off; returns ``key``.

    Throttling (``SlowDown``), ``InternalError``, 5xx, connection failures
    and timeouts are retried; ``AccessDenied``, ``NoSuchBucket`` and other
    4xx are raised at once, as botocore's ``ClientError``. A file is sent with
    boto3's ``upload_file`` (multipart past 8 MiB), from its start at every
    attempt."""
    s3 = single_attempt_client(client)
    if isinstance(data, (bytes, bytearray, memoryview)):
        body = bytes(data)

        def upload_to_s3() -> str:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            return key

    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)

        def upload_to_s3() -> str:
            s3.upload_file(path, bucket, key)
            return key

    else:
        raise TypeError(f"data must be bytes or the path of a file, not {type(data).__name__}")
    return _decorator(config if config is not None else RetryPresets.S3_UPLOAD, s3_verdict, overrides)(upload_to_s3)()


def retry_s3_download(
    client: Any, bucket: str, key: str, config: Optional[RetryConfiguration] = None, **overrides: Any
) -> bytes:
    """The bytes of ``s3://bucket/key``, read with ``RetryPresets.S3_DOWNLOAD``
    (or ``config``, ``overrides`` applied) and boto3's own retries off.

    A body cut off mid-way is read again from the start (the read is part of
    the attempt); ``NoSuchKey``, ``AccessDenied`` and other 4xx are raised at
    once, as botocore's ``ClientError``."""
    s3 = single_attempt_client(client)

    def download_from_s3() -> bytes:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    return _decorator(config if config is not None else RetryPresets.S3_DOWNLOAD, s3_verdict, overrides)(download_from_s3)()
