"""``soko admin gc`` while two server processes on one PostgreSQL database and one bucket
take commits: no committed version loses a blob.

Two writer processes log versions through the two servers, each version with a file of its
own and one all versions share, and delete every other version they made so that gc finds
garbage; meanwhile the test runs gc through either server, again and again, with a grace
period of a few seconds (an upload older than that whose commit has not come yet may be
collected, and its commit then fails cleanly: the grace period is the operator's bound on
how long a commit may take). What must never happen is a version that committed and then
lacks a blob. When the writers are done, a gc without grace period collects the deleted
versions' blobs; every live version downloads byte for byte and ``soko admin verify`` is
clean.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import server_fixtures
from server_fixtures import SokoServer, fresh_pg_database, point_sdk_at, unique_project

import soko
from soko.cli.main import main

pytestmark = pytest.mark.integration

moto_server = server_fixtures.moto_server

_ROUNDS = 6
_WRITER = r"""
import hashlib, json, os, sys
import soko
from soko.errors import SokoError

writer, project, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.join(os.getcwd(), "files")
os.makedirs(root, exist_ok=True)
previous = None
for index in range(rounds):
    own = hashlib.sha256(f"{writer}-{index}".encode()).digest() * 2000
    with open(os.path.join(root, "own.bin"), "wb") as f:
        f.write(own)
    with open(os.path.join(root, "shared.bin"), "wb") as f:
        f.write(b"shared by every version " * 1000)
    try:
        with soko.init(project=project) as run:
            artifact = soko.Artifact(f"data-{writer}", type="dataset")
            artifact.add_dir(root)
            run.log_artifact(artifact)
            artifact.wait()
        name = artifact.qualified_name
        print(json.dumps({"writer": writer, "index": index, "version": name}), flush=True)
    except SokoError as exc:
        print(json.dumps({"writer": writer, "index": index, "error": str(exc)}), flush=True)
        continue
    if index % 2 == 1 and previous is not None:
        soko.Api().artifact(previous).delete()
        print(json.dumps({"writer": writer, "deleted": previous}), flush=True)
    previous = name
"""


def _own_bytes(writer: str, index: int) -> bytes:
    return hashlib.sha256(f"{writer}-{index}".encode()).digest() * 2000


@pytest.fixture
def two_servers(tmp_path: Path, moto_server: str) -> Iterator[list[SokoServer]]:
    bucket = server_fixtures.new_bucket(moto_server)
    with fresh_pg_database() as url:
        servers: list[SokoServer] = []
        key = f"soko_test_{os.urandom(18).hex()}"
        try:
            for index in range(2):
                servers.append(
                    SokoServer(
                        tmp_path / f"server-{index}",
                        db=url,
                        store=f"s3://{bucket}/shared",
                        s3_endpoint_url=moto_server,
                        admin_key=key,
                        env=server_fixtures.S3_TEST_ENV,
                    )
                )
            yield servers
        finally:
            for server in servers:
                server.stop()


def _writer(server: SokoServer, name: str, project: str, tmp_path: Path) -> subprocess.Popen[str]:
    workdir = tmp_path / f"writer-{name}"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env.update(
        SOKO_BASE_URL=server.url,
        SOKO_API_KEY=server.admin_key,
        SOKO_DIR=str(workdir / "soko"),
        SOKO_CACHE_DIR=str(workdir / "cache"),
    )
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, name, project, str(_ROUNDS)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _gc(server: SokoServer, capsys: pytest.CaptureFixture[str], *, grace: str) -> dict[str, object]:
    capsys.readouterr()
    code = main(["admin", "gc", "--grace", grace, "--json", "--host", server.url,
                 "--key", server.admin_key])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    report: dict[str, object] = json.loads(out)
    return report


def test_gc_through_either_server_while_both_take_commits_loses_nothing(
    two_servers: list[SokoServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = unique_project("gcw")
    writers = [_writer(server, f"w{i}", project, tmp_path) for i, server in enumerate(two_servers)]
    deleted_blobs = 0
    runs = 0
    while any(w.poll() is None for w in writers) or runs < 2:
        report = _gc(two_servers[runs % 2], capsys, grace="3s")
        deleted_blobs += len(report["deleted"])  # type: ignore[arg-type]
        runs += 1
    outputs = [w.communicate(timeout=60) for w in writers]
    for writer, (_, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err[-3000:]
    deleted_blobs += len(_gc(two_servers[0], capsys, grace="0")["deleted"])  # type: ignore[arg-type]

    events = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    committed = {(e["writer"], e["index"]): e["version"] for e in events if "version" in e}
    deleted = {e["deleted"] for e in events if "deleted" in e}
    assert {writer for writer, _ in committed} == {"w0", "w1"}, events
    assert deleted, "the writers deleted versions for gc to collect"
    assert deleted_blobs >= 1, "gc found the deleted versions' own blobs"

    point_sdk_at(two_servers[1], two_servers[1].admin_key, tmp_path=tmp_path / "reader",
                 monkeypatch=monkeypatch)  # fmt: skip
    live = {key: name for key, name in committed.items() if name not in deleted}
    assert live
    for (writer, index), name in sorted(live.items()):
        folder = Path(soko.Api().artifact(name).download(str(tmp_path / "get" / name)))
        assert (folder / "own.bin").read_bytes() == _own_bytes(writer, index), name
        assert (folder / "shared.bin").read_bytes() == b"shared by every version " * 1000

    capsys.readouterr()
    code = main(["admin", "verify", "--json", "--host", two_servers[0].url,
                 "--key", two_servers[0].admin_key])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] is True, report["problems"]
