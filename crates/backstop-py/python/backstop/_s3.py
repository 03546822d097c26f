"""Document 000's S3 helpers: ``retry_s3_upload`` and ``retry_s3_download``,
a boto3 client's upload and download retried with the S3 presets.

boto3 retries on its own (3 attempts in its default mode, 5 in AWS's
"standard" mode): under backstop's 5 attempts that would make up to 25
requests, with two backoffs fighting. The helpers switch boto3's retries off
for their own calls: a client already configured with one attempt
(``Config(retries={"total_max_attempts": 1})``) is used as it is; for any
other, the helpers make (once, and keep while the client lives) a sibling
client with the same credentials, region, endpoint and settings but a
single attempt. Your client is not changed.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Optional, Union

from ._presets import RetryConfiguration, RetryPresets, _decorator, s3_verdict

__all__ = ["retry_s3_download", "retry_s3_upload", "single_attempt_client"]

_siblings: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _retries_off(client: Any) -> bool:
    retries = getattr(client.meta.config, "retries", None) or {}
    return retries.get("total_max_attempts") == 1 or retries.get("max_attempts") == 0


def single_attempt_client(client: Any) -> Any:
    """``client`` if boto3's own retries are off on it, otherwise its
    single-attempt sibling (see the module docs)."""
    if _retries_off(client):
        return client
    with _lock:
        sibling = _siblings.get(client)
        if sibling is None:
            sibling = _siblings[client] = _make_sibling(client)
    return sibling


def _make_sibling(client: Any) -> Any:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.Session()
    # The client's own credentials object (refreshing ones keep refreshing);
    # botocore keeps it on the request signer, and a session created bare
    # hands out the credentials set on it.
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    if credentials is not None:
        session._credentials = credentials
    # The endpoint the client was given, if any (otherwise botocore resolves
    # the region's, as it did for the client).
    builtins = getattr(getattr(client, "_ruleset_resolver", None), "_builtins", None) or {}
    endpoint_url = builtins.get("SDK::Endpoint")
    try:
        import boto3.session  # the boto3 client's methods (upload_file) come from its session

        make = boto3.session.Session(botocore_session=session).client
    except ImportError:  # a botocore client without boto3
        make = session.create_client
    return make(
        client.meta.service_model.service_name,
        region_name=client.meta.region_name,
        endpoint_url=endpoint_url,
        config=client.meta.config.merge(Config(retries={"total_max_attempts": 1})),
    )


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
    return _decorator(config or RetryPresets.S3_UPLOAD, s3_verdict, overrides)(upload_to_s3)()


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

    return _decorator(config or RetryPresets.S3_DOWNLOAD, s3_verdict, overrides)(download_from_s3)()
