"""Scaling out and failing: real server and client processes.

- Two server processes on different ports share one PostgreSQL database and one bucket;
  four client processes log the same collection through both at once: the versions are
  v0..vN-1 with no gap and no duplicate, and every blob of every version is stored.
- A client killed (SIGKILL) in the middle of its upload leaves no version visible, and
  logging the same files again uploads only what the killed client had not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import server_fixtures
from child_pipes import read_line
from server_fixtures import (
    S3_TEST_ENV,
    BucketBlobs,
    ServerUnderTest,
    SokoServer,
    fresh_pg_database,
    new_bucket,
    point_sdk_at,
    unique_project,
)

import soko
from soko.client import connect
from soko.client.http import HttpBackend
from soko.errors import NotFoundError

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
pg_database = server_fixtures.pg_database
cloud_server = server_fixtures.cloud_server
any_server = server_fixtures.any_server

WRITER = textwrap.dedent(
    """
    import json, os, sys
    import soko

    project, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    logged = []
    for i in range(count):
        folder = f"w{writer}-{i}"
        os.makedirs(folder)
        for j in range(4):
            with open(os.path.join(folder, f"part{j}.txt"), "w") as f:
                f.write(f"writer {writer} version {i} part {j}\\n")
        with open(os.path.join(folder, "common.txt"), "w") as f:
            f.write("the same in every version\\n")
        with soko.init(project=project) as run:
            artifact = soko.Artifact("shared", "dataset")
            artifact.add_dir(folder)
            run.log_artifact(artifact).wait()
            logged.append(artifact.version)
    print(json.dumps(logged))
    """
)

# Logs a folder one batch at a time, says when the first batch is stored and then waits
# on its stdin (for a word that never comes), so that the test kills it in the middle of
# its upload.
STALLED_LOGGER = textwrap.dedent(
    """
    import sys
    import soko
    from soko.client import http_upload

    project, folder = sys.argv[1], sys.argv[2]
    original = http_upload.BlobUploads._upload_batch

    def stall(self, *args):
        original(self, *args)
        print("stored", flush=True)
        sys.stdin.readline()

    http_upload.BlobUploads._upload_batch = stall
    http_upload.WORKERS = 1
    http_upload._BATCH_BLOBS = 20
    # Added outside the run: the log uploads the files (add_dir in a run sends them).
    artifact = soko.Artifact("killed", "dataset")
    artifact.add_dir(folder)
    with soko.init(project=project) as run:
        run.log_artifact(artifact).wait()
    print("finished")
    """
)


def client_env(server: SokoServer, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env.update(
        SOKO_BASE_URL=server.url,
        SOKO_API_KEY=server.admin_key,
        SOKO_DIR=str(home / "soko"),
        SOKO_CACHE_DIR=str(home / "cache"),
        SOKO_SILENT="true",
    )
    return env


def test_four_clients_through_two_servers_sharing_postgresql_and_s3(
    moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions_each = 8
    bucket = new_bucket(moto_server)
    store = f"s3://{bucket}/shared"
    with fresh_pg_database() as db:
        common = {"db": db, "store": store, "s3_endpoint_url": moto_server, "env": S3_TEST_ENV}
        first = SokoServer(tmp_path / "first", **common)  # type: ignore[arg-type]
        second = SokoServer(tmp_path / "second", admin_key=first.admin_key, **common)  # type: ignore[arg-type]
        try:
            project = unique_project()
            script = tmp_path / "writer.py"
            script.write_text(WRITER)
            clients = []
            for index in range(4):
                server = (first, second)[index % 2]
                home = tmp_path / f"client{index}"
                env = client_env(server, home)
                clients.append(
                    subprocess.Popen(
                        [sys.executable, str(script), project, str(index), str(versions_each)],
                        cwd=home,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            outputs = [c.communicate(timeout=300) for c in clients]
            for client, (out, err) in zip(clients, outputs, strict=True):
                assert client.returncode == 0, err[-3000:]
                assert len(json.loads(out.strip().splitlines()[-1])) == versions_each

            point_sdk_at(
                first, first.admin_key, tmp_path=tmp_path / "check", monkeypatch=monkeypatch
            )
            api = soko.Api()
            versions = api.artifacts("dataset", f"{project}/shared")
            assert sorted(int(v.version[1:]) for v in versions) == list(range(4 * versions_each))
            assert len({v.digest for v in versions}) == 4 * versions_each
            backend = connect.get_backend()
            assert isinstance(backend, HttpBackend)
            needed = set()
            for version in versions:
                needed |= version.manifest.blob_digests()
            assert len(needed) == 4 * versions_each * 4 + 1  # parts, plus the common file
            assert backend.missing_blobs(needed, entity="local", project=project) == set()
            # The other server sees the same versions, and their bytes are right.
            point_sdk_at(
                second, first.admin_key, tmp_path=tmp_path / "check2", monkeypatch=monkeypatch
            )
            latest = soko.Api().artifact(f"{project}/shared:latest")
            assert latest.version == f"v{4 * versions_each - 1}"
            latest.verify(latest.download(str(tmp_path / "latest")))
            assert BucketBlobs(moto_server, bucket, "shared").staged() == []
        finally:
            first.stop()
            second.stop()


def test_a_client_killed_mid_upload_leaves_nothing_visible_and_a_rerun_uploads_the_rest(
    any_server: ServerUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = any_server.server
    project = unique_project()
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(200):
        (folder / f"f{i:03d}.bin").write_bytes(os.urandom(2048) + str(i).encode())
    script = tmp_path / "stalled.py"
    script.write_text(STALLED_LOGGER)
    home = tmp_path / "victim"
    env = client_env(server, home)
    victim = subprocess.Popen(
        [sys.executable, str(script), project, str(folder)],
        cwd=home,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = read_line(victim, timeout=120, what="the client storing its first batch")
    assert said == "stored", said
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert "finished" not in victim.communicate()[0]

    point_sdk_at(server, server.admin_key, tmp_path=tmp_path / "rerun", monkeypatch=monkeypatch)
    with pytest.raises(NotFoundError):
        soko.Api().artifact(f"{project}/killed:latest")

    uploaded: list[object] = []
    original = HttpBackend.store_blobs

    def recording(self: HttpBackend, sources: Any, **kwargs: Any) -> Any:
        uploaded.extend(s.digest for s in sources)
        return original(self, sources, **kwargs)

    monkeypatch.setattr(HttpBackend, "store_blobs", recording)
    artifact = soko.Artifact("killed", "dataset")
    artifact.add_dir(str(folder))
    with soko.init(project=project) as run:
        run.log_artifact(artifact).wait()
    assert artifact.version == "v0"
    # The killed client had stored at least one batch of 20; those were not sent again.
    assert 0 < len(uploaded) <= 200 - 20
    stored = artifact.manifest.blob_digests()
    missing = connect.get_backend().missing_blobs(stored, entity="local", project=project)
    assert missing == set()
    root = soko.Api().artifact(f"{project}/killed:latest").download(str(tmp_path / "out"))
    assert sorted(os.listdir(root)) == sorted(os.listdir(folder))
    assert any_server.blobs.staged() == []
