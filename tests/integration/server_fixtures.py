"""Real ``soko server`` processes for tests, on free loopback ports.

:class:`SokoServer` starts ``python -m soko.server`` in a subprocess with a known admin key
(``SOKO_ADMIN_KEY``) and waits for ``/api/v1/health``. The fixtures here give a session-wide
server on SQLite + a folder, a fresh PostgreSQL database per test session, moto's S3 server
(``moto_server``), and ``server_env``, which points the SDK of the current test at a server
(SOKO_BASE_URL, SOKO_API_KEY) with its own cache and working directory. The integration
tests and the backend conformance suite both use them.

A test module imports the fixtures it uses from this module. A soko server that does not
start is a failure, always (it is the code under test); PostgreSQL or moto that cannot be
reached fail under ``CI=true`` and skip otherwise.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

_START_TIMEOUT = 60.0
_SERVICE_START_TIMEOUT = 30.0
# A starting service is asked whether it answers until it does (or the deadline passes):
# its answer is the signal, the pause between asks only spares the CPU.
_READY_POLL_INTERVAL = 0.05
PG_ADMIN_URL = os.environ.get("SOKO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def service_unavailable(message: str) -> NoReturn:
    """Fail under CI, where every service must be there; skip on a developer's machine."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{message} (CI=true: integration services are required)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ----- other services as child processes ------------------------------------------------


class ServiceProcess:
    """A service started as a child process, ready once *probe_url* answers."""

    def __init__(self, name: str, command: list[str], *, url: str, probe_url: str, log: Path):
        self.name = name
        self.url = url
        self._log_path = log
        self._log = log.open("wb")
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._wait_ready(probe_url)

    def _log_tail(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self._log_path.read_text(errors="replace")[-2000:]

    def _wait_ready(self, probe_url: str) -> None:
        deadline = time.monotonic() + _SERVICE_START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                service_unavailable(
                    f"{self.name} exited with code {self._process.returncode} while "
                    f"starting:\n{self._log_tail()}"
                )
            try:
                httpx.get(probe_url, timeout=2.0)
                return
            except httpx.TransportError:
                time.sleep(_READY_POLL_INTERVAL)
        self.stop()
        service_unavailable(
            f"{self.name} did not answer at {probe_url} within {_SERVICE_START_TIMEOUT:.0f}s:\n"
            f"{self._log_tail()}"
        )

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._log.close()


def require_module(module: str, what: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        service_unavailable(f"{what} is not installed ({exc}); pip install 'soko[test,cloud]'")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server on a free loopback port."""
    require_module("moto.server", "moto[server]")
    require_module("boto3", "boto3")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = ServiceProcess(
        "moto server",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        url=url,
        probe_url=f"{url}/moto-api/",
        log=tmp_path_factory.mktemp("moto") / "moto.log",
    )
    try:
        yield url
    finally:
        service.stop()


# ----- soko servers -------------------------------------------------------------------


_LISTENING = re.compile(r"soko server: listening on (http://127\.0\.0\.1:(\d+))")


class SokoServer:
    """One ``soko server`` process; ``url`` once it answers, ``admin_key`` to call it."""

    def __init__(
        self,
        workdir: Path,
        *,
        db: str | None = None,
        store: str | None = None,
        s3_endpoint_url: str | None = None,
        admin_key: str | None = None,
        env: dict[str, str] | None = None,
        print_admin_key: bool = False,
        wait: bool = True,
        args: list[str] | None = None,
    ) -> None:
        """With *print_admin_key*, SOKO_ADMIN_KEY is not set: the server makes the admin's
        key at its first start and prints it, and ``admin_key`` is read from its output.
        Without *wait*, the caller calls :meth:`wait_ready` (to start several at once).
        *args* are more options of ``soko server``."""
        # The server binds port 0 and prints the port it got: a port picked here and bound
        # later by the child could be taken meanwhile by another test's server, whose
        # health check would then answer for this one.
        self.port = 0
        self.url = ""
        self.admin_key = admin_key or f"soko_test_{secrets.token_urlsafe(24)}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"server-{uuid.uuid4().hex[:8]}.log"
        command = [sys.executable, "-m", "soko.server", "--host", "127.0.0.1", "--port", "0"]
        if db:
            command += ["--db", db]
        if store:
            command += ["--store", store]
        if s3_endpoint_url:
            command += ["--s3-endpoint-url", s3_endpoint_url]
        command += args or []
        child_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SOKO_")},
            "SOKO_DIR": str(workdir / "soko"),
            "SOKO_ADMIN_KEY": self.admin_key,
            **(env or {}),
        }
        if print_admin_key:
            del child_env["SOKO_ADMIN_KEY"]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
        )
        self._reads_printed_key = print_admin_key
        if wait:
            self.wait_ready()

    def printed_key(self) -> str | None:
        """The admin key the server printed at its start, if it printed one."""
        for line in self.log_tail().splitlines():
            if line.strip().startswith("soko_") and " " not in line.strip():
                return line.strip()
        return None

    def log_tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self) -> None:
        """Return once the server answers; fail the test if it exits or never answers."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"soko server exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            if not self.url:
                self._log.flush()
                bound = _LISTENING.search(self.log_path.read_text(errors="replace"))
                if bound is None:
                    time.sleep(_READY_POLL_INTERVAL)
                    continue
                self.url, self.port = bound.group(1), int(bound.group(2))
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2.0).status_code == 200:
                    if self._reads_printed_key:
                        self.admin_key = self.printed_key() or ""
                    return
            except httpx.TransportError:
                pass
            time.sleep(_READY_POLL_INTERVAL)
        self.stop()
        pytest.fail(f"soko server did not answer within {_START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def client(self, key: str | None = None) -> httpx.Client:
        """An httpx client of ``/api/v1`` with *key* (the admin's by default)."""
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60.0)

    def new_user(self, name: str, roles: dict[tuple[str, str], str] | None = None) -> str:
        """Create user *name* with *roles* ``{(entity, project): role}``; returns its key."""
        with self.client() as admin:
            created = admin.post("/users", json={"name": name})
            assert created.status_code == 201, created.text
            for (entity, project), role in (roles or {}).items():
                granted = admin.put(
                    f"/users/{name}/roles",
                    json={"entity": entity, "project": project, "role": role},
                )
                assert granted.status_code == 200, granted.text
            made = admin.post(f"/users/{name}/keys")
            assert made.status_code == 201, made.text
            key: str = made.json()["key"]
            return key

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()


# ----- PostgreSQL ---------------------------------------------------------------------


def _pg_connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:
        service_unavailable(f"psycopg is not installed ({exc}); pip install 'soko[server]'")
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        service_unavailable(f"PostgreSQL is not reachable at {url}: {exc}")


def _database_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards."""
    name = f"soko_test_{uuid.uuid4().hex[:12]}"
    with _pg_connect(PG_ADMIN_URL) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        with _pg_connect(PG_ADMIN_URL) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database for this test session, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


# ----- servers and the SDK pointed at them ----------------------------------------------


@pytest.fixture(scope="session")
def soko_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SokoServer]:
    """A server on SQLite and a blob folder, shared by the session (tests use own projects)."""
    root = tmp_path_factory.mktemp("soko-server")
    server = SokoServer(root, db=f"sqlite:///{root / 'meta.db'}", store=str(root / "blobs"))
    try:
        yield server
    finally:
        server.stop()


@dataclass
class ServerEnv:
    server: SokoServer
    cache: Path
    workdir: Path


def point_sdk_at(
    server: SokoServer, key: str | None, *, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ServerEnv:
    """Point the SDK of this test at *server* with *key*; a cache and folder of its own."""
    import soko
    from soko.client import connect

    env = ServerEnv(server, tmp_path / "cache", tmp_path / "work")
    env.workdir.mkdir(parents=True, exist_ok=True)
    for name in ("SOKO_ENTITY", "SOKO_PROJECT", "SOKO_LINK", "SOKO_CACHE_MAX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOKO_DIR", str(tmp_path / "client-soko"))
    monkeypatch.setenv("SOKO_CACHE_DIR", str(env.cache))
    monkeypatch.setenv("SOKO_BASE_URL", server.url)
    if key is None:
        monkeypatch.delenv("SOKO_API_KEY", raising=False)
    else:
        monkeypatch.setenv("SOKO_API_KEY", key)
    monkeypatch.chdir(env.workdir)
    if soko.run is not None:
        soko.finish()
    connect.reset()
    return env


@pytest.fixture
def server_env(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerEnv]:
    """The SDK of this test talks to the session's server, as its admin."""
    from soko.client import connect

    env = point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch
    )
    yield env
    import soko
    from soko.errors import SokoError

    try:
        if soko.run is not None:
            soko.finish()
    except SokoError:
        pass
    connect.reset()


def unique_project(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ----- what a test may do to a server's blobs behind its back ---------------------------


class FolderBlobs:
    """The blob folder of a server (``--store DIR``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: Any) -> Path:
        from soko.storage.base import blob_key

        return self.root / blob_key(digest)

    def exists(self, digest: Any) -> bool:
        return self._path(digest).exists()

    def delete(self, digest: Any) -> None:
        self._path(digest).unlink()

    def overwrite(self, digest: Any, data: bytes) -> None:
        path = self._path(digest)
        os.chmod(path, 0o644)
        path.write_bytes(data)

    def read(self, digest: Any) -> bytes:
        return self._path(digest).read_bytes()

    def staged(self) -> list[str]:
        return []


class BucketBlobs:
    """The bucket of a server (``--store s3://bucket/prefix``), through boto3."""

    def __init__(self, endpoint: str, bucket: str, prefix: str) -> None:
        import boto3

        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, digest: Any) -> str:
        from soko.storage.base import blob_key

        return f"{self.prefix}/{blob_key(digest)}"

    def exists(self, digest: Any) -> bool:
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(digest))
        return bool(found.get("Contents"))

    def delete(self, digest: Any) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(digest))

    def overwrite(self, digest: Any, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(digest), Body=data)

    def read(self, digest: Any) -> bytes:
        found = self.client.get_object(Bucket=self.bucket, Key=self._key(digest))
        return bytes(found["Body"].read())

    def staged(self) -> list[str]:
        """Presigned uploads not (yet) moved into place."""
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/uploads/")
        return [o["Key"] for o in found.get("Contents", [])]


@dataclass
class ServerUnderTest:
    kind: str
    server: SokoServer
    blobs: FolderBlobs | BucketBlobs


S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def new_bucket(endpoint: str) -> str:
    bucket = f"soko-srv-{uuid.uuid4().hex[:16]}"
    BucketBlobs(endpoint, bucket, "x").client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(scope="session")
def cloud_server(
    moto_server: str, pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerUnderTest]:
    """A server on a fresh PostgreSQL database and a fresh bucket of the moto server."""
    bucket = new_bucket(moto_server)
    server = SokoServer(
        tmp_path_factory.mktemp("soko-cloud-server"),
        db=pg_database,
        store=f"s3://{bucket}/team-store",
        s3_endpoint_url=moto_server,
        env=S3_TEST_ENV,
    )
    try:
        yield ServerUnderTest("cloud", server, BucketBlobs(moto_server, bucket, "team-store"))
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["folder", "cloud"])
def any_server(request: pytest.FixtureRequest) -> ServerUnderTest:
    """Each test runs against SQLite + a folder, then PostgreSQL + S3 (moto)."""
    if request.param == "cloud":
        cloud: ServerUnderTest = request.getfixturevalue("cloud_server")
        return cloud
    server: SokoServer = request.getfixturevalue("soko_server")
    return ServerUnderTest("folder", server, FolderBlobs(server.log_path.parent / "blobs"))


@pytest.fixture
def any_server_env(
    any_server: ServerUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerEnv]:
    """The SDK of this test talks to ``any_server``, as its admin."""
    from soko.client import connect

    server = any_server.server
    env = point_sdk_at(server, server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    yield env
    import soko
    from soko.errors import SokoError

    try:
        if soko.run is not None:
            soko.finish()
    except SokoError:
        pass
    connect.reset()


@contextmanager
def server_on(database: str, root: Path) -> Iterator[SokoServer]:
    """A server of its own on *database* (``"sqlite"``: a file; ``"postgresql"``: a fresh
    database) and a blob folder, stopped afterwards."""
    if database == "postgresql":
        with fresh_pg_database() as url:
            server = SokoServer(root, db=url, store=str(root / "blobs"))
            try:
                yield server
            finally:
                server.stop()
        return
    server = SokoServer(root, db=f"sqlite:///{root / 'meta.db'}", store=str(root / "blobs"))
    try:
        yield server
    finally:
        server.stop()
