"""Real services for integration tests: an S3 endpoint and a GCS emulator.

Each runs as its own process on a free loopback port for the whole session and is stopped
afterwards: moto in server mode (``python -m moto.server``) for S3, gcp-storage-emulator
in memory for GCS. A service that cannot be started fails the tests that need it when
``CI=true``, and skips them otherwise (a developer's machine may lack it).

Per test, ``s3_env`` / ``gcs_env`` point the environment at the service, so that both soko
and the ``wandb`` package, which read the same variables, talk to it; buckets get unique
names, so tests never see each other's objects.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import server_fixtures
from server_fixtures import ServiceProcess, free_port, require_module, service_unavailable

# moto's server is shared with the backend conformance suite, so it lives with the servers.
moto_server = server_fixtures.moto_server

_S3_ENV_TO_CLEAR = (
    "AWS_S3_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


# ----- S3 (moto server mode) --------------------------------------------------------


@pytest.fixture
def s3_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 (soko's and wandb's) at the moto server; returns its URL."""
    for name in _S3_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_server


@pytest.fixture
def s3_client(s3_env: str) -> Any:
    import boto3

    return boto3.session.Session().client("s3")


def _new_bucket(s3_client: Any, *, versioned: bool) -> str:
    bucket = f"soko-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=bucket)
    if versioned:
        s3_client.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        )
    return bucket


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A new, empty, unversioned bucket."""
    return _new_bucket(s3_client, versioned=False)


@pytest.fixture
def s3_versioned_bucket(s3_client: Any) -> str:
    """A new, empty bucket with versioning enabled."""
    return _new_bucket(s3_client, versioned=True)


# ----- GCS (gcp-storage-emulator) -----------------------------------------------------


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an in-memory gcp-storage-emulator on a free loopback port."""
    require_module("gcp_storage_emulator", "gcp-storage-emulator")
    require_module("google.cloud.storage", "google-cloud-storage")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gcp_storage_emulator", "start"]
    command += ["-H", "127.0.0.1", "--port", str(port), "--in-memory", "-q"]
    service = ServiceProcess(
        "gcp-storage-emulator",
        command,
        url=url,
        probe_url=f"{url}/storage/v1/b",
        log=tmp_path_factory.mktemp("gcs") / "gcs.log",
    )
    try:
        yield url
    finally:
        service.stop()


@pytest.fixture
def gcs_env(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point google-cloud-storage (soko's and wandb's) at the emulator; returns its URL."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "soko-test")
    return gcs_emulator


@pytest.fixture
def gcs_client(gcs_env: str) -> Any:
    from google.cloud import storage

    return storage.Client(project="soko-test")


@pytest.fixture
def gcs_bucket(gcs_client: Any) -> Any:
    """A new, empty bucket (a google.cloud.storage.Bucket)."""
    return gcs_client.create_bucket(f"soko-{uuid.uuid4().hex[:20]}")


# ----- the wandb package, offline -------------------------------------------------------


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The ``wandb`` package, offline and silent, with its cache and files under tmp_path.

    wandb keeps the settings of its first use in a process-wide singleton; tearing it down
    afterwards keeps this test's folders out of the next test that runs wandb here.
    """
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    try:
        import wandb
    except ImportError as exc:
        service_unavailable(f"the wandb package is not installed ({exc}); pip install 'soko[test]'")
    try:
        yield wandb
    finally:
        wandb.teardown()
