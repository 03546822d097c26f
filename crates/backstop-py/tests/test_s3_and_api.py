"""Documents 000 and 002: ``with_s3_retry`` with boto3 against moto's S3
server (behind a fault server that throttles, refuses and resets), and
``with_api_retry`` with requests and httpx against a fault server; the
presets' numbers; virtual time for every backoff."""

from __future__ import annotations

import httpx
import pytest
import requests
from botocore.exceptions import ClientError

from backstop import RetryConfiguration, RetryExhaustedException, RetryPresets, with_api_retry, with_s3_retry
from backstop.testing import virtual_time
from servers import RESET, s3_error


def is_put(key):
    return lambda method, path: method == "PUT" and path.startswith(f"/bike-data/{key}")


def test_presets_are_the_cores():
    assert RetryPresets.S3_UPLOAD == RetryConfiguration(5, 1.0, 30.0, 2.0, 1.0)
    assert RetryPresets.S3_DOWNLOAD == RetryPresets.S3_UPLOAD
    assert (RetryPresets.API_CALL.max_attempts, RetryPresets.API_CALL.base_delay) == (3, 0.5)
    assert (RetryPresets.API_CALL.max_delay, RetryPresets.API_CALL.jitter) == (10.0, 0.5)


def test_upload_to_s3_survives_throttling_as_document_002_writes_it(s3):
    s3_client, faults = s3
    faults.fail(2, s3_error(503, "SlowDown"), is_put("run-1.parquet"))

    @with_s3_retry()
    def upload_to_s3(bucket: str, key: str, data: bytes) -> str:
        """Upload data to S3 with automatic retry on transient errors."""
        s3_client.put_object(Bucket=bucket, Key=key, Body=data)
        return key

    with virtual_time() as clock:
        assert upload_to_s3("bike-data", "run-1.parquet", b"rows") == "run-1.parquet"
    assert s3_client.get_object(Bucket="bike-data", Key="run-1.parquet")["Body"].read() == b"rows"
    assert faults.hits_where(is_put("run-1.parquet")) == 3, "boto3's own retries are off: one PUT per attempt"
    assert 1.0 <= clock.sleeps[0] <= 2.0 and 2.0 <= clock.sleeps[1] <= 3.0


def test_permanent_errors_are_raised_at_once_as_themselves(s3):
    s3_client, faults = s3
    faults.fail(1, s3_error(403, "AccessDenied"), is_put("secret"))

    @with_s3_retry(max_attempts=5, base_delay=1.0, max_delay=30.0)
    def upload(key):
        s3_client.put_object(Bucket="bike-data", Key=key, Body=b"x")

    with virtual_time() as clock, pytest.raises(ClientError) as info:
        upload("secret")
    assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert clock.sleeps == [] and faults.hits_where(is_put("secret")) == 1
    with virtual_time(), pytest.raises(ClientError) as missing:
        with_s3_retry()(lambda: s3_client.get_object(Bucket="bike-data", Key="nope"))()
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_exhaustion_after_five_puts_chains_the_last_error(s3):
    s3_client, faults = s3
    faults.fail(100, s3_error(503, "SlowDown"), is_put("hot"))

    @with_s3_retry()
    def upload_to_s3():
        s3_client.put_object(Bucket="bike-data", Key="hot", Body=b"x")

    with virtual_time() as clock, pytest.raises(RetryExhaustedException) as info:
        upload_to_s3()
    assert info.value.attempts == 5 and faults.hits_where(is_put("hot")) == 5 and len(clock.sleeps) == 4
    assert isinstance(info.value.__cause__, ClientError) and info.value.last_exception is info.value.__cause__


def test_s3_hint_and_connection_resets(s3):
    s3_client, faults = s3
    faults.fail(1, s3_error(503, "SlowDown", {"x-amz-retry-after": "4000"}), is_put("hinted"))
    faults.fail(1, RESET, is_put("reset"))
    with virtual_time() as clock:
        with_s3_retry()(lambda: s3_client.put_object(Bucket="bike-data", Key="hinted", Body=b"x"))()
        assert 4.0 <= clock.sleeps[0] <= 8.0, "S3's hint is a floor, spread by the jitter"
        with_s3_retry()(lambda: s3_client.put_object(Bucket="bike-data", Key="reset", Body=b"x"))()
    assert len(clock.sleeps) == 2


def test_fetch_weather_data_as_document_002_writes_it(fault_server):
    fault_server.fail(1, (503, {}, b"busy"))
    fault_server.body = b'{"temperature": 21}'

    @with_api_retry()
    def fetch_weather_data(url: str, params: dict) -> dict:
        """Fetch weather data with automatic retry on server errors."""
        response = requests.get(url, params=params)
        response.raise_for_status()
        return response.json()

    with virtual_time() as clock:
        assert fetch_weather_data(fault_server.url + "/forecast", {"city": "Utrecht"}) == {"temperature": 21}
    assert fault_server.hits() == 2 and len(clock.sleeps) == 1 and 0.5 <= clock.sleeps[0] <= 1.0


def test_4xx_is_not_retried_and_retry_after_is_a_floor(fault_server):
    fault_server.fail(1, (404, {}, b"no"))
    with virtual_time() as clock, pytest.raises(requests.HTTPError):
        with_api_retry()(lambda: requests.get(fault_server.url + "/missing").raise_for_status())()
    assert clock.sleeps == [] and fault_server.hits() == 1

    @with_api_retry(respect_retry_after=True, max_attempts=3)
    def fetch_rate_limited_api(url: str) -> dict:
        """Fetch from rate-limited API, respecting Retry-After headers."""
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    fault_server.fail(1, (429, {"Retry-After": "3"}, b"slow down"))
    with virtual_time() as clock:
        fetch_rate_limited_api(fault_server.url + "/limited")
    assert 3.0 <= clock.sleeps[0] <= 6.0, "the hint is a floor, spread past it by the jitter"
    fault_server.fail(1, (429, {"Retry-After": "3"}, b"slow down"))
    with virtual_time() as clock:
        with_api_retry(respect_retry_after=False)(fetch_rate_limited_api.__wrapped__)(fault_server.url + "/limited")
    assert clock.sleeps[0] <= 1.0, "the hint ignored"


def test_a_post_without_an_idempotency_key_is_sent_once(fault_server):
    fault_server.fail(3, (503, {}, b"busy"))
    with virtual_time(), pytest.raises(requests.HTTPError):
        with_api_retry()(lambda: requests.post(fault_server.url + "/orders", json={}).raise_for_status())()
    assert fault_server.hits("POST") == 1
    with virtual_time():
        post = lambda: requests.post(  # noqa: E731
            fault_server.url + "/orders", json={}, headers={"Idempotency-Key": "k1"}
        ).raise_for_status()
        with_api_retry()(post)()
    assert fault_server.hits("POST") == 4


def test_httpx_errors_and_refused_connections(fault_server):
    fault_server.fail(1, (502, {}, b"bad gateway"))
    with virtual_time() as clock:
        response = with_api_retry()(lambda: httpx.get(fault_server.url + "/x").raise_for_status())()
    assert response.status_code == 200 and len(clock.sleeps) == 1
    closed = fault_server.url.rsplit(":", 1)[0] + ":1"
    with virtual_time() as clock, pytest.raises(RetryExhaustedException) as info:
        with_api_retry()(lambda: httpx.post(closed + "/orders", json={}))()
    assert info.value.attempts == 3, "a POST refused before connecting is safe to retry"
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_overrides_name_their_parameter():
    with pytest.raises(TypeError, match="unknown RetryConfiguration parameters: max_retries"):
        with_s3_retry(max_retries=3)
    with pytest.raises(ValueError, match="base_delay is 5s, above max_delay 1s"):
        with_api_retry(base_delay=5, max_delay=1)


def test_upload_large_file_as_document_002_writes_it(s3, tmp_path):
    s3_client, faults = s3
    faults.fail(2, s3_error(503, "SlowDown"), is_put("large.csv"))
    path = tmp_path / "large.csv"
    path.write_bytes(b"station,bikes\n" * 1000)

    @with_s3_retry(
        max_attempts=5,
        base_delay=1.0,
        max_delay=30.0,
    )
    def upload_large_file(bucket: str, key: str, filepath: str) -> str:
        """Upload large file with custom retry settings."""
        s3_client.upload_file(filepath, bucket, key)
        return key

    # boto3's upload_file raises S3UploadFailedError from the ClientError:
    # the classifier finds the S3 error code in the exception's chain.
    with virtual_time() as clock:
        assert upload_large_file("bike-data", "large.csv", str(path)) == "large.csv"
    assert faults.hits_where(is_put("large.csv")) == 3 and len(clock.sleeps) == 2
    assert s3_client.get_object(Bucket="bike-data", Key="large.csv")["Body"].read() == path.read_bytes()


def test_error_handling_as_document_002_writes_it(s3, capsys):
    s3_client, faults = s3
    faults.fail(100, s3_error(503, "SlowDown"), lambda m, p: m == "PUT" and p.startswith("/my-bucket/data.json"))
    faults.fail(1, s3_error(403, "AccessDenied"), lambda m, p: m == "PUT" and p.startswith("/my-bucket/secret.json"))

    @with_s3_retry()
    def upload_to_s3(bucket: str, key: str, data: bytes) -> str:
        s3_client.put_object(Bucket=bucket, Key=key, Body=data)
        return key

    def handle(key, data):
        # Document 002's block, as written.
        try:
            result = upload_to_s3("my-bucket", key, data)
        except RetryExhaustedException as e:
            print(f"Upload failed after {e.attempts} attempts")
            print(f"Last error: {e.last_exception}")
            # Handle permanent failure
        except Exception as e:
            # Non-retryable error
            print(f"Non-retryable error: {e}")

    s3_client.create_bucket(Bucket="my-bucket")
    with virtual_time():
        handle("data.json", b"{}")
        handle("secret.json", b"{}")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Upload failed after 5 attempts"
    assert out[1].startswith("Last error: An error occurred (SlowDown) when calling the PutObject operation")
    assert out[2].startswith("Non-retryable error: An error occurred (AccessDenied)")


DAGSTER_BLOCK = '''
from backstop import with_s3_retry
from dagster import asset

@asset
def processed_bike_data(context, raw_data: pd.DataFrame) -> pd.DataFrame:
    """Asset that uploads processed data with retry protection."""
    
    @with_s3_retry()
    def upload():
        s3_client.upload_fileobj(
            raw_data.to_parquet(),
            "bike-data-bucket",
            f"processed/{context.run_id}.parquet"
        )
    
    upload()
    return raw_data
'''


def test_the_dagster_asset_of_document_002(s3, monkeypatch):
    """Document 002's Dagster block, with `dagster` and pandas stood in for
    (neither is installed): `asset` is the identity, and `to_parquet()`
    returns a file object (pandas returns bytes there, which boto3's
    `upload_fileobj` refuses: the document's own slip)."""
    import io
    import types

    s3_client, faults = s3
    s3_client.create_bucket(Bucket="bike-data-bucket")
    faults.fail(1, s3_error(500, "InternalError"), lambda m, p: m == "PUT" and "/processed/" in p)
    monkeypatch.setitem(__import__("sys").modules, "dagster", types.SimpleNamespace(asset=lambda f: f))

    class Frame:
        def to_parquet(self):
            return io.BytesIO(b"PAR1 rows PAR1")

    scope = {"s3_client": s3_client, "pd": types.SimpleNamespace(DataFrame=Frame)}
    exec(DAGSTER_BLOCK, scope)
    raw = Frame()
    with virtual_time() as clock:
        assert scope["processed_bike_data"](types.SimpleNamespace(run_id="run-7"), raw) is raw
    assert len(clock.sleeps) == 1
    body = s3_client.get_object(Bucket="bike-data-bucket", Key="processed/run-7.parquet")["Body"].read()
    assert body == b"PAR1 rows PAR1"


def test_the_logging_block_of_document_002(s3, caplog):
    import logging

    s3_client, faults = s3
    faults.fail(2, s3_error(503, "SlowDown"), is_put("logged"))

    @with_s3_retry()
    def upload_to_s3():
        s3_client.put_object(Bucket="bike-data", Key="logged", Body=b"x")

    logging.basicConfig(level=logging.INFO)
    with caplog.at_level(logging.INFO, logger="backstop"), virtual_time() as clock:
        upload_to_s3()
    lines = [r.getMessage() for r in caplog.records if r.name == "backstop"]
    # The document's lines, each with the error that caused the retry after
    # it; the delays are the preset's (1 s, 2 s) plus up to 1 s of jitter.
    assert lines[0].startswith(f"Retrying upload_to_s3 in {clock.sleeps[0]:.1f} seconds (attempt 1/5): ClientError:")
    assert lines[1].startswith(f"Retrying upload_to_s3 in {clock.sleeps[1]:.1f} seconds (attempt 2/5): ClientError:")
    assert lines[2] == "upload_to_s3 succeeded on attempt 3"
    assert [r.levelname for r in caplog.records if r.name == "backstop"] == ["INFO"] * 3


def test_408_and_client_timeouts_are_retried_and_a_date_retry_after_is_read_against_date(fault_server):
    import email.utils
    import time

    fault_server.fail(1, (408, {}, b"too slow"))
    with virtual_time() as clock:
        with_api_retry()(lambda: requests.get(fault_server.url + "/a").raise_for_status())()
    assert fault_server.hits() == 2 and len(clock.sleeps) == 1
    # A read timeout on the client's side is a timeout: retried.
    calls = []

    def timing_out():
        calls.append(1)
        if len(calls) == 1:
            raise requests.ReadTimeout("read timed out")
        return "ok"

    with virtual_time() as clock:
        assert with_api_retry()(timing_out)() == "ok"
    assert len(calls) == 2
    # Retry-After as an HTTP date, 5 s after the server's own Date header.
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    fault_server.fail(1, (429, {"Retry-After": later}, b"slow down"))
    with virtual_time() as clock:
        with_api_retry()(lambda: requests.get(fault_server.url + "/b").raise_for_status())()
    assert 3.0 <= clock.sleeps[0] <= 12.0, clock.sleeps


def test_a_hostile_retry_after_ends_the_run_instead_of_sleeping_a_day(fault_server):
    fault_server.fail(1, (429, {"Retry-After": "86400"}, b"come back tomorrow"))
    with virtual_time() as clock, pytest.raises(Exception):
        with_api_retry()(lambda: requests.get(fault_server.url + "/c").raise_for_status())()
    assert clock.sleeps == [] and fault_server.hits() == 1


def test_aws_throttling_timeouts_and_other_4xx_are_classified_by_the_core():
    from botocore.exceptions import ReadTimeoutError

    from backstop._presets import s3_verdict

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")

    assert s3_verdict(client_error("ThrottlingException", 400)) == "throttled"
    assert s3_verdict(client_error("SlowDown", 503)) == "throttled"
    assert s3_verdict(client_error("RequestTimeout", 400)) == "timeout"
    assert s3_verdict(client_error("InternalError", 500)) == "retry"
    assert s3_verdict(client_error("InvalidArgument", 400)) == "fail"
    assert s3_verdict(ReadTimeoutError(endpoint_url="http://s3.local")) == "timeout"


def test_a_bare_retry_configuration_has_the_documents_defaults():
    config = RetryConfiguration()
    assert (config.max_attempts, config.base_delay, config.max_delay) == (5, 1.0, 30.0)
    assert (config.exponential_base, config.jitter) == (2.0, 1.0)
    assert config.retry_on_exceptions == () and config.ignore_on_exceptions == ()
    with pytest.raises(ValueError, match="jitter"):
        RetryConfiguration(jitter=-1.0)
