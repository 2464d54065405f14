"""Processes logging incremental versions of one collection at once, on the embedded store
(SQLite) and on a server over PostgreSQL and S3: every version holds the one before it plus
one file, so the last holds every file any racer added (none is lost to a stale base)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from child_pipes import read_line, tell
from server_fixtures import (  # noqa: F401
    ServerUnderTest,
    cloud_server,
    moto_server,
    pg_database,
    point_sdk_at,
)

import soko

pytestmark = pytest.mark.integration

LOGS = 6
RACERS = ("left", "right")

_RACER = textwrap.dedent(
    """
    import json, sys, pathlib, soko
    tag, project, data = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    data.mkdir(parents=True, exist_ok=True)
    print("ready", flush=True)
    sys.stdin.readline()  # the racers begin together, on the test's word
    logged = []
    with soko.init(project=project) as run:
        for i in range(int(sys.argv[4])):
            source = data / f"{tag}-{i}.txt"
            source.write_text(f"{tag} adds file {i}")
            artifact = soko.Artifact("grow", "dataset", incremental=True)
            artifact.add_file(str(source))
            run.log_artifact(artifact).wait()
            logged.append(artifact.version)
    print(json.dumps(logged))
    """
)


def race(project: str, tmp_path: Path) -> list[str]:
    """Run the racers to the end; the versions they logged."""
    env = {**os.environ, "SOKO_SILENT": "true"}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, tag, project, str(tmp_path / tag), str(LOGS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in RACERS
    ]
    for racer in racers:
        assert read_line(racer, timeout=120, what="a racer getting ready") == "ready"
    for racer in racers:
        tell(racer, "go")
    logged: list[str] = []
    for racer in racers:
        out, err = racer.communicate(timeout=600)
        assert racer.returncode == 0, err
        logged += json.loads(out)
    return logged


def check_chain(project: str) -> None:
    base = {"base.txt"}
    expected = base | {f"{tag}-{i}.txt" for tag in RACERS for i in range(LOGS)}
    previous = base
    for index in range(1, 2 * LOGS + 1):
        paths = {e.path for e in soko.Api().artifact(f"{project}/grow:v{index}").manifest}
        assert paths > previous and len(paths) == len(previous) + 1, index
        previous = paths
    assert previous == expected
    latest = soko.Api().artifact(f"{project}/grow:latest")
    assert (latest.version, latest.file_count) == (f"v{2 * LOGS}", len(expected))


def log_base(project: str) -> None:
    Path("base.txt").write_text("base")
    with soko.init(project=project) as run:
        artifact = soko.Artifact("grow", "dataset")
        artifact.add_file("base.txt")
        run.log_artifact(artifact)


def test_racers_on_the_embedded_store(soko_env: object, tmp_path: Path) -> None:
    log_base("proj")
    logged = race("proj", tmp_path)
    assert sorted(logged, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 2 * LOGS + 1)]
    check_chain("proj")


def test_racers_on_a_server_over_postgresql_and_s3(
    cloud_server: ServerUnderTest,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = cloud_server.server
    point_sdk_at(server, server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    project = f"inc-{os.getpid()}-{tmp_path.name}"[:60]
    log_base(project)
    logged = race(project, tmp_path)
    assert sorted(logged, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 2 * LOGS + 1)]
    check_chain(project)
