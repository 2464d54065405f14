"""``soko server`` as an operator starts it: every start-up mistake is one line and a
non-zero exit, the address printed is the one bound, and a running server answers its
probes (``/health``, ``/ready``), its metrics and its access log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import server_fixtures
from server_fixtures import (
    PG_ADMIN_URL,
    ServerEnv,
    SokoServer,
    free_port,
    fresh_pg_database,
    unique_project,
)

import soko

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
server_env = server_fixtures.server_env
moto_server = server_fixtures.moto_server

_CLI = "import sys\n{prelude}\nfrom soko.cli.main import main\nraise SystemExit(main(sys.argv[1:]))"


def soko_server_command(
    tmp_path: Path, *args: str, prelude: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``soko server ARGS`` in a child process that must exit by itself."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOKO_", "AWS_"))}
    child_env["SOKO_DIR"] = str(tmp_path / "soko")
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", _CLI.format(prelude=prelude), "server", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("soko server: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_without_the_server_extra_it_says_what_to_install(tmp_path: Path) -> None:
    result = soko_server_command(tmp_path, prelude="sys.modules['uvicorn'] = None")
    assert_one_line(result, 1, "uvicorn", "pip install 'soko[server]'")


def test_a_database_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    server_fixtures._pg_connect(PG_ADMIN_URL).close()  # PostgreSQL itself must answer
    base = PG_ADMIN_URL.rpartition("/")[0]
    result = soko_server_command(tmp_path, "--db", f"{base}/soko_never_created_{os.getpid()}")
    assert_one_line(result, 1, "does not exist", "createdb")


def test_a_database_nobody_listens_for_is_one_line(tmp_path: Path) -> None:
    result = soko_server_command(
        tmp_path, "--db", f"postgresql://soko@127.0.0.1:{free_port()}/soko"
    )
    assert_one_line(result, 1, "Connection refused", "Start PostgreSQL")


def test_an_unsupported_database_url_is_one_line(tmp_path: Path) -> None:
    result = soko_server_command(tmp_path, "--db", "mysql://user:secret@db.example/soko")
    line = assert_one_line(result, 2, "mysql://", "postgresql://")
    assert "secret" not in line


def test_s3_without_credentials_is_one_line(tmp_path: Path) -> None:
    result = soko_server_command(
        tmp_path,
        "--store",
        "s3://bucket/prefix",
        "--s3-endpoint-url",
        f"http://127.0.0.1:{free_port()}",
        env={"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"},
    )
    assert_one_line(result, 1, "credentials", "AWS_ACCESS_KEY_ID")


_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def test_an_unreachable_s3_endpoint_is_one_line(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = soko_server_command(
        tmp_path, "--store", "s3://bucket/p", "--s3-endpoint-url", endpoint, env=_CREDENTIALS
    )
    assert_one_line(result, 1, endpoint, "--s3-endpoint-url")


def test_a_bucket_that_does_not_exist_is_one_line(tmp_path: Path, moto_server: str) -> None:
    result = soko_server_command(
        tmp_path, "--store", "s3://no-such-bucket/p", "--s3-endpoint-url", moto_server,
        env=_CREDENTIALS,
    )  # fmt: skip
    assert_one_line(result, 1, "no-such-bucket", "NoSuchBucket")


def test_every_bad_option_is_named_on_a_line_of_its_own(tmp_path: Path) -> None:
    result = soko_server_command(
        tmp_path,
        "--workers", "0",
        "--root-path", "soko/",
        "--forwarded-allow-ips", "10.0.0.0/8,proxy.local",
        "--max-manifest-bytes", "0",
        "--s3-endpoint-url", "minio:9000",
        env={"SOKO_ADMIN_KEY": "short"},
    )  # fmt: skip
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert all(line.startswith("soko server: error: ") for line in lines)
    named = ["--workers", "minio:9000", "--root-path", "proxy.local", "--max-manifest-bytes"]
    assert len(lines) == len(named) + 1
    for option in [*named, "SOKO_ADMIN_KEY"]:
        assert sum(option in line for line in lines) == 1, (option, lines)
    assert not (tmp_path / "soko").exists()  # nothing was opened


def test_a_port_in_use_is_one_line(tmp_path: Path, soko_server: SokoServer) -> None:
    result = soko_server_command(tmp_path, "--port", str(soko_server.port))
    assert_one_line(result, 1, f"127.0.0.1:{soko_server.port}", "--port")


@pytest.fixture
def port_zero_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env["SOKO_DIR"] = str(tmp_path / "soko")
    process = subprocess.Popen(
        [sys.executable, "-m", "soko.server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # ends when the process does
            lines.append(line)
            if "listening on" in line:
                break
        yield process, lines
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_port_zero_prints_the_port_it_listens_on(
    port_zero_server: tuple[subprocess.Popen[str], list[str]],
) -> None:
    _, lines = port_zero_server
    output = "".join(lines)
    listening = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", output)
    assert listening is not None, output
    url, port = listening.group(1), int(listening.group(2))
    assert port != 0
    assert f"--host {url}" in output  # the login hint names the same address
    assert httpx.get(f"{url}/api/v1/health").status_code == 200


def _metric(server: SokoServer, name: str, **labels: str) -> float:
    """The sum of the samples of *name* whose labels include *labels*."""
    text = httpx.get(f"{server.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        head, _, rest = series.partition("{")
        if head != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def test_metrics_count_a_commit_and_its_bytes(server_env: ServerEnv, tmp_path: Path) -> None:
    server = server_env.server
    commits = _metric(server, "soko_commits_total")
    received = _metric(server, "soko_http_received_bytes_total")
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(50_000))
    with soko.init(project=unique_project("metrics")) as run:
        artifact = soko.Artifact("counted", type="dataset")
        artifact.add_file(str(data))
        run.log_artifact(artifact)
        artifact.wait()
    assert _metric(server, "soko_commits_total") == commits + 1
    assert _metric(server, "soko_http_received_bytes_total") >= received + 50_000
    committed = _metric(server, "soko_http_requests_total", method="POST", route="/api/v1/versions")
    assert committed >= 1
    assert _metric(server, "soko_http_request_duration_seconds_count", route="/api/v1/versions")


def test_ready_fails_when_the_database_goes_away(tmp_path: Path) -> None:
    with fresh_pg_database() as url:
        server = SokoServer(tmp_path, db=url, store=str(tmp_path / "blobs"))
        try:
            ready = httpx.get(f"{server.url}/api/v1/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready", "database": "ok", "store": "ok"}
            name = url.rpartition("/")[2]
            with server_fixtures._pg_connect(PG_ADMIN_URL) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            down = httpx.get(f"{server.url}/api/v1/ready")
            assert down.status_code == 503, down.text
            body = down.json()
            assert body["status"] == "unavailable"
            assert body["store"] == "ok"
            assert "does not exist" in body["database"]
            # Liveness asks nothing of the database: the process itself is fine.
            assert httpx.get(f"{server.url}/api/v1/health").status_code == 200
        finally:
            server.stop()


def test_behind_a_proxy_with_a_json_access_log(tmp_path: Path) -> None:
    args = ["--root-path", "/soko", "--access-log", "json", "--forwarded-allow-ips", "127.0.0.1"]
    server = SokoServer(tmp_path, args=args)
    try:
        answer = httpx.get(
            f"{server.url}/api/v1/health", headers={"X-Forwarded-For": "203.0.113.7"}
        )
        assert answer.status_code == 200
        schema = httpx.get(f"{server.url}/api/v1/openapi.json").json()
        assert schema["servers"] == [{"url": "/soko"}]
    finally:
        server.stop()
    records = [json.loads(line) for line in server.log_path.read_text().splitlines()
               if line.startswith("{")]  # fmt: skip
    forwarded = [r for r in records if r["client"] == "203.0.113.7"]
    assert len(forwarded) == 1
    record = forwarded[0]
    assert record["method"] == "GET"
    assert record["route"] == "/api/v1/health"
    assert record["status"] == 200
    assert record["bytes_out"] > 0
    assert record["duration_ms"] >= 0


def test_workers_share_the_port_and_the_metrics(tmp_path: Path) -> None:
    server = SokoServer(tmp_path, args=["--workers", "2"])
    try:
        before = _metric(server, "soko_http_requests_total", route="/api/v1/health")
        for _ in range(20):  # a new connection each time: either worker may answer
            assert httpx.get(f"{server.url}/api/v1/health").status_code == 200
        after = _metric(server, "soko_http_requests_total", route="/api/v1/health")
        assert after == before + 20
    finally:
        server.stop()


def test_a_store_of_another_database_is_refused_in_one_line(tmp_path: Path) -> None:
    store = str(tmp_path / "blobs")
    server = SokoServer(tmp_path / "a", db=f"sqlite:///{tmp_path / 'a.db'}", store=store)
    server.stop()
    other_db = f"sqlite:///{tmp_path / 'b.db'}"
    result = soko_server_command(tmp_path, "--db", other_db, "--store", store)
    assert_one_line(result, 1, "belongs to another metadata database", "--store")


def test_a_bucket_of_another_database_is_refused_in_one_line(
    tmp_path: Path, moto_server: str
) -> None:
    bucket = server_fixtures.new_bucket(moto_server)
    store = f"s3://{bucket}/team"
    with fresh_pg_database() as first:
        server = SokoServer(
            tmp_path / "first", db=first, store=store, s3_endpoint_url=moto_server,
            env=server_fixtures.S3_TEST_ENV,
        )  # fmt: skip
        server.stop()
    objects = server_fixtures.BucketBlobs(moto_server, bucket, "team").client.list_objects_v2(
        Bucket=bucket, Prefix="team/store_id"
    )
    assert [o["Key"] for o in objects.get("Contents", [])] == ["team/store_id"]
    with fresh_pg_database() as second:
        result = soko_server_command(
            tmp_path, "--db", second, "--store", store, "--s3-endpoint-url", moto_server,
            env=server_fixtures.S3_TEST_ENV,
        )  # fmt: skip
    assert_one_line(result, 1, "belongs to another metadata database", bucket)
