"""``soko admin backup`` of a SQLite + folder server while a writer logs through it, and the
restore: a new server started on the copy serves every version committed before the backup
byte for byte, and ``soko admin verify`` finds nothing wrong with it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_fixtures import SokoServer, point_sdk_at, unique_project

import soko
from soko.cli.main import main

pytestmark = pytest.mark.integration

_MAX_ROUNDS = 60
_WRITER = r"""
import hashlib, json, os, sys
import soko

project, stop, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.join(os.getcwd(), "files")
os.makedirs(root, exist_ok=True)
for index in range(rounds):
    if os.path.exists(stop):
        break
    files = {
        "small.txt": f"small file of version {index}\n".encode(),
        "shared.txt": b"the same in every version\n" * 100,
        "large.bin": hashlib.sha256(str(index).encode()).digest() * (2 * 1024 * 1024 // 32),
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    with soko.init(project=project) as run:
        artifact = soko.Artifact("data", type="dataset")
        artifact.add_dir(root)
        run.log_artifact(artifact)
        artifact.wait()
    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    print(json.dumps({"version": artifact.qualified_name, "files": sums}), flush=True)
"""


def _admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["admin", *args, "--json"])
    out, err = capsys.readouterr()
    assert out, err
    report: dict[str, object] = json.loads(out)
    return code, report


def test_backup_while_a_writer_logs_restores_every_committed_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    db, store = data / "meta.db", data / "blobs"
    server = SokoServer(tmp_path / "live", db=f"sqlite:///{db}", store=str(store))
    project = unique_project("bak")
    stop = tmp_path / "stop-writing"
    workdir = tmp_path / "writer"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env.update(SOKO_BASE_URL=server.url, SOKO_API_KEY=server.admin_key,
               SOKO_DIR=str(workdir / "soko"), SOKO_CACHE_DIR=str(workdir / "cache"))  # fmt: skip
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, project, str(stop), str(_MAX_ROUNDS)],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        before: dict[str, dict[str, str]] = {}
        while len(before) < 3:
            line = writer.stdout.readline()
            assert line, f"the writer stopped: {writer.communicate()[1][-3000:]}"
            event = json.loads(line)
            before[event["version"]] = event["files"]
        # The writer goes on logging while the backup runs.
        backup_dir = tmp_path / "backup"
        code, report = _admin(
            capsys, "backup", str(backup_dir), "--db", f"sqlite:///{db}", "--store", str(store)
        )
        assert code == 0 and report["ok"] is True, report
        assert writer.poll() is None, "the backup ran while the writer was still logging"
        stop.touch()
        rest, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-3000:]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        server.stop()
    after = [json.loads(line)["version"] for line in rest.splitlines()]
    assert after, "the writer committed versions after the backup started"
    assert isinstance(report["versions"], int) and report["versions"] >= len(before)

    # Restore: a new server on the copy, as the backup's report says.
    restored = SokoServer(
        tmp_path / "restored",
        db=f"sqlite:///{backup_dir / 'soko.db'}",
        store=str(backup_dir / "store"),
        admin_key=server.admin_key,
    )
    try:
        point_sdk_at(restored, restored.admin_key, tmp_path=tmp_path / "reader",
                     monkeypatch=monkeypatch)  # fmt: skip
        for name, sums in before.items():
            folder = Path(soko.Api().artifact(name).download(str(tmp_path / "get" / name)))
            got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
            assert got == sums, name
        code, verified = _admin(capsys, "verify", "--host", restored.url,
                                "--key", restored.admin_key)  # fmt: skip
        assert code == 0 and verified["ok"] is True, verified["problems"]
        assert verified["unreferenced_blobs"] == 0, "the copy holds only what versions need"
    finally:
        restored.stop()


def test_backup_refuses_what_it_cannot_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["admin", "backup", str(tmp_path / "b"), "--db", "postgresql://x/y"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pg_dump" in err and len(err.splitlines()) == 1
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    (tmp_path / "blobs").mkdir()
    (tmp_path / "meta.db").write_bytes(b"")
    db = f"sqlite:///{tmp_path / 'meta.db'}"
    code = main(["admin", "backup", str(tmp_path / "full"), "--db", db,
                 "--store", str(tmp_path / "blobs")])  # fmt: skip
    assert code == 2
    assert "not empty" in capsys.readouterr().err
