import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from servers import FaultServer  # noqa: E402


@pytest.fixture
def fault_server():
    server = FaultServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def moto_s3():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield (host, port)
    server.stop()


def s3_client(url, **retries):
    """A boto3 S3 client on `url` (path-style addressing, test credentials);
    `retries` is botocore's retries setting (none: boto3's default)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries=retries or None, s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3(moto_s3):
    """A boto3 S3 client (its own retries off) behind a fault server in front of moto; yields (client, faults)."""
    faults = FaultServer(upstream=moto_s3)
    client = s3_client(faults.url, total_max_attempts=1)
    client.create_bucket(Bucket="bike-data")
    yield client, faults
    faults.close()


@pytest.fixture
def default_s3(moto_s3):
    """A client as most code makes it, boto3's own retries on (its default),
    behind a fault server in front of moto; yields (client, faults)."""
    faults = FaultServer(upstream=moto_s3)
    client = s3_client(faults.url)
    client.create_bucket(Bucket="helpers")
    yield client, faults
    faults.close()


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free loopback port (scripts/test-python.sh
    installs it and says where in REDIS_SERVER); stopped after the test."""
    from servers import RedisServer

    server = RedisServer(tmp_path)
    yield server.url
    server.close()
