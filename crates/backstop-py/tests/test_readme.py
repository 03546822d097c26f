"""README.md's Python blocks, run as written: the S3 and weather-API
example against moto's S3 server and a fault server, the virtual-time
example, the fleet example on a private redis-server. Only what names a
real machine (``boto3.client("s3")``, the Redis URL) is pointed at the
test's servers."""

from __future__ import annotations

import re
from pathlib import Path

import boto3
from botocore.config import Config

from backstop.testing import virtual_time
from servers import s3_error

README = Path(__file__).resolve().parents[3] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_the_three_python_examples():
    assert len(python_blocks()) == 3


def test_the_s3_and_weather_example(s3, fault_server):
    client, faults = s3
    source = python_blocks()[0]
    assert 'boto3.client("s3")' in source
    scope = {"make_client": lambda: client}
    exec(source.replace('boto3.client("s3")', "make_client()"), scope)
    faults.fail(1, s3_error(503, "SlowDown"), lambda method, path: method == "PUT")
    fault_server.fail(1, (503, {"Retry-After": "2"}, b"busy"))
    fault_server.body = b'{"temperature": 21}'
    with virtual_time() as clock:
        assert scope["upload_to_s3"]("bike-data", "readme.json", b"{}") == "readme.json"
        assert scope["fetch_weather_data"](fault_server.url, {"city": "Utrecht"}) == {"temperature": 21}
    assert len(clock.sleeps) == 2 and clock.sleeps[1] >= 2.0, clock.sleeps
    assert scope["budget"].level == 500, "both retries' tokens came back with their successes"


def test_the_virtual_time_example():
    exec(python_blocks()[1], {})


def test_the_fleet_example(redis_url):
    source = python_blocks()[2]
    assert '"redis://10.0.0.5:6379/0"' in source
    scope = {}
    exec(source.replace('"redis://10.0.0.5:6379/0"', repr(redis_url)), scope)
    scope["upload"]("key", b"data")
    assert scope["breaker"].state.value == "CLOSED"
