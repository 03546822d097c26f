"""Document 000's S3 helpers, ``retry_s3_upload`` and ``retry_s3_download``,
with boto3 clients left at boto3's default retries, against moto's S3 server
behind a fault server: one request per backstop attempt."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from backstop import RetryExhaustedException, retry_s3_download, retry_s3_upload
from backstop._s3 import single_attempt_client
from backstop.testing import virtual_time
from servers import RESET, s3_error, truncated


def on(method, key):
    return lambda m, p: m == method and p.startswith(f"/helpers/{key}")


def test_an_upload_is_one_request_per_attempt_though_boto3_would_retry(default_s3):
    client, faults = default_s3
    faults.fail(2, s3_error(503, "SlowDown"), on("PUT", "day.parquet"))
    with virtual_time() as clock:
        assert retry_s3_upload(client, "helpers", "day.parquet", b"rows") == "day.parquet"
    assert faults.hits_where(on("PUT", "day.parquet")) == 3, "boto3's retries would have made 2 more"
    assert len(clock.sleeps) == 2 and 1.0 <= clock.sleeps[0] <= 2.0
    assert client.get_object(Bucket="helpers", Key="day.parquet")["Body"].read() == b"rows"
    # The caller's client is not changed; its sibling is made once.
    assert client.meta.config.retries is None or client.meta.config.retries.get("total_max_attempts") != 1
    assert single_attempt_client(client) is single_attempt_client(client)


def test_an_upload_from_a_file_and_its_errors(default_s3, tmp_path):
    client, faults = default_s3
    path = tmp_path / "day.csv"
    path.write_bytes(b"a,b\n1,2\n")
    faults.fail(1, RESET, on("PUT", "from-file"))
    faults.fail(1, s3_error(503, "SlowDown"), on("PUT", "from-str-path"))
    with virtual_time() as clock:
        retry_s3_upload(client, "helpers", "from-file", path)
        retry_s3_upload(client, "helpers", "from-str-path", str(path))
    # boto3's upload_file wraps the SlowDown in S3UploadFailedError: retried all the same.
    assert len(clock.sleeps) == 2 and faults.hits_where(on("PUT", "from-str-path")) == 2
    assert client.get_object(Bucket="helpers", Key="from-file")["Body"].read() == b"a,b\n1,2\n"
    with pytest.raises(TypeError, match="data must be bytes or the path of a file, not int"):
        retry_s3_upload(client, "helpers", "x", 123)
    with virtual_time() as clock, pytest.raises(ClientError) as denied:
        retry_s3_upload(client, "no-such-bucket", "x", b"x")
    assert denied.value.response["Error"]["Code"] == "NoSuchBucket" and clock.sleeps == []


def test_a_download_survives_a_reset_and_a_body_cut_off_midway(default_s3):
    client, faults = default_s3
    client.put_object(Bucket="helpers", Key="forecast.json", Body=b'{"temperature": 21}' * 100)
    faults.fail(1, RESET, on("GET", "forecast.json"))
    faults.fail(1, truncated(b'{"temperature": 21}' * 100), on("GET", "forecast.json"))
    with virtual_time() as clock:
        assert retry_s3_download(client, "helpers", "forecast.json") == b'{"temperature": 21}' * 100
    assert faults.hits_where(on("GET", "forecast.json")) == 3 and len(clock.sleeps) == 2


def test_a_missing_key_is_raised_at_once_and_exhaustion_chains(default_s3):
    client, faults = default_s3
    with virtual_time() as clock, pytest.raises(ClientError) as missing:
        retry_s3_download(client, "helpers", "nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey" and clock.sleeps == []
    assert faults.hits_where(on("GET", "nope")) == 1
    faults.fail(100, s3_error(500, "InternalError"), on("GET", "hot"))
    with virtual_time() as clock, pytest.raises(RetryExhaustedException) as exhausted:
        retry_s3_download(client, "helpers", "hot", max_attempts=3)
    assert exhausted.value.attempts == 3 and faults.hits_where(on("GET", "hot")) == 3
    assert isinstance(exhausted.value.__cause__, ClientError)


def test_a_client_with_its_retries_off_is_used_as_it_is(s3):
    client, _ = s3
    assert single_attempt_client(client) is client


def test_the_callers_hooks_and_stubber_apply_to_the_helpers_calls(default_s3):
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    client, faults = default_s3
    client.meta.events.register(
        "before-sign.s3.PutObject", lambda request, **_: request.headers.__setitem__("X-Pipeline", "bikes")
    )
    faults.fail(1, s3_error(503, "SlowDown"), on("PUT", "hooked"))
    with virtual_time():
        retry_s3_upload(client, "helpers", "hooked", b"x")
    puts = [headers for method, path, headers in faults.requests if method == "PUT" and "/hooked" in path]
    assert len(puts) == 2 and all(h.get("X-Pipeline") == "bikes" for h in puts), "the hook ran on every attempt"
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_object", {"Body": StreamingBody(io.BytesIO(b"stubbed"), 7)}, {"Bucket": "helpers", "Key": "hooked"}
        )
        assert retry_s3_download(client, "helpers", "hooked") == b"stubbed"
        stubber.assert_no_pending_responses()
    with pytest.raises(TypeError, match="client must be a boto3 S3 client, not NoneType"):
        retry_s3_upload(None, "helpers", "x", b"x")
