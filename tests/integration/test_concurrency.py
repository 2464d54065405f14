"""Several processes on one embedded store: racing logs get distinct version
numbers with no gap, and a process killed in the middle of a log leaves nothing visible."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from child_pipes import read_line, tell

import soko
from soko.errors import NotFoundError
from soko.service import versions
from soko.service.fsck import check_store
from soko.service.gc import collect_garbage
from soko.service.store import Store

pytestmark = pytest.mark.integration

_RACER = textwrap.dedent(
    """
    import json, sys, pathlib, soko
    tag, data = sys.argv[1], pathlib.Path(sys.argv[2])
    data.mkdir(parents=True, exist_ok=True)
    print("ready", flush=True)
    sys.stdin.readline()  # both processes begin together, on the test's word
    logged = []
    with soko.init(project="proj") as run:
        for i in range(20):
            source = data / f"{tag}-{i}.txt"
            source.write_text(f"{tag} writes version {i}")
            artifact = soko.Artifact("race", "dataset")
            artifact.add_file(str(source), name="content.txt")
            logged.append(run.log_artifact(artifact))
        for artifact in logged:
            artifact.wait()
    print(json.dumps([[a.version, a.digest, tag] for a in logged]))
    """
)


def test_two_processes_log_one_collection_at_once(soko_env, tmp_path: Path):
    env = {**os.environ, "SOKO_SILENT": "true"}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, tag, str(tmp_path / tag)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("left", "right")
    ]
    for racer in racers:  # both have imported soko and wait at the start line
        assert read_line(racer, timeout=120, what="a racer getting ready") == "ready"
    for racer in racers:
        tell(racer, "go")
    reported: list[list[str]] = []
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err
        reported += json.loads(out)

    store = Store.open_local(soko_env.store)
    records = versions.list_versions(store, "local", "proj", "race")
    # 40 versions, v0 to v39: no gap, no duplicate, each the content of one log.
    assert [r.version_index for r in records] == list(range(40))
    assert len({r.digest for r in records}) == 40
    assert sorted((v, d) for v, d, _ in reported) == sorted((r.version, r.digest) for r in records)
    for tag in ("left", "right"):
        mine = [v for v, _, t in reported if t == tag]
        assert len(set(mine)) == 20
    for record in records[::13]:
        artifact = soko.Api().artifact(f"proj/race:{record.version}")
        root = Path(artifact.download(root=str(tmp_path / "out" / record.version)))
        content = (root / "content.txt").read_text()
        tag, _, index = content.partition(" writes version ")
        assert [record.version, record.digest, tag] in reported
        assert (tmp_path / tag / f"{tag}-{index}.txt").read_text() == content
    assert check_store(store).ok


_BIG_LOGGER = textwrap.dedent(
    """
    import sys, soko
    with soko.init(project="proj") as run:
        artifact = soko.Artifact("big", "model")
        artifact.add_file(sys.argv[1])
        run.log_artifact(artifact).wait()
    print("committed")
    """
)


def _write_big_file(path: Path, size: int) -> None:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for i in range(size // len(block)):
            out.write(i.to_bytes(8, "little") + block[8:])


def _partial_temp_file(tmp_dir: Path, size: int) -> Path | None:
    for entry in tmp_dir.glob("*"):
        try:
            written = entry.stat().st_size
        except FileNotFoundError:
            continue
        if 0 < written < size:
            return entry
    return None


def test_a_log_killed_mid_upload_leaves_no_version(soko_env, tmp_path: Path):
    size = 512 * 1024 * 1024
    big = tmp_path / "weights.bin"
    _write_big_file(big, size)
    store = Store.open_local(soko_env.store)
    tmp_dir = Path(soko_env.store) / "store" / "tmp"
    env = {**os.environ, "SOKO_SILENT": "true"}

    logger = subprocess.Popen(
        [sys.executable, "-c", _BIG_LOGGER, str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    # Polled: the store's copy shows its progress only in its temp file, and the 512 MiB it
    # copies keep it in flight long enough to be caught there.
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline and logger.poll() is None:
        victim = _partial_temp_file(tmp_dir, size)
        if victim is None:
            time.sleep(0.001)
    assert victim is not None, "the upload never showed up in the store's tmp/"
    os.kill(logger.pid, signal.SIGKILL)
    logger.wait(timeout=30)
    assert logger.returncode == -signal.SIGKILL
    assert victim.exists() and victim.stat().st_size < size  # killed mid-copy

    # Nothing is visible, and the store is sound: the temp file is a note, not a problem.
    with pytest.raises(NotFoundError):
        versions.list_versions(store, "local", "proj", "big")
    assert not soko.Api().artifact_exists("proj/big:latest")
    report = check_store(store)
    assert report.ok, report.problems
    assert any(victim.name in note for note in report.notes)

    # The next log works.
    again = subprocess.run(
        [sys.executable, "-c", _BIG_LOGGER, str(big)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "committed"
    (record,) = versions.list_versions(store, "local", "proj", "big")
    assert record.version == "v0" and record.size == size
    assert check_store(store).ok

    # Garbage collection removes the killed writer's temp file once it is old enough.
    assert collect_garbage(store).temp_files_removed == 0
    old = time.time() - 7200
    os.utime(victim, (old, old))
    assert collect_garbage(store).temp_files_removed == 1
    assert not victim.exists()
