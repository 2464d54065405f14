"""Running many writer processes at once (``writer_child.py``) and checking what they left."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from torture_checks import check_every_version
from torture_support import HERE, writer_files

from soko.sdk.artifact import Artifact

CHILD = HERE / "writer_child.py"
WRITE_TIMEOUT = 900.0


@dataclass
class Outcome:
    committed: dict[tuple[int, int], str] = field(default_factory=dict)
    """(writer, index) -> the version the writer was told it got."""
    errors: list[dict[str, object]] = field(default_factory=list)


def run_writers(
    envs: list[dict[str, str]],
    *,
    seed: int,
    versions: int,
    collections: int,
    project: str,
    workdir: Path,
) -> Outcome:
    """Start one writer per environment, release them together, wait for all of them."""
    children = []
    for writer, env in enumerate(envs):
        command = [sys.executable, str(CHILD), str(seed), str(writer), str(versions)]
        command += [str(collections), project, str(workdir)]
        children.append(
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=workdir,
            )
        )
    try:
        for child in children:
            assert child.stdout is not None
            if not child.stdout.readline():
                _, errors = child.communicate(timeout=60)
                pytest.fail(f"a writer died before it was ready:\n{errors}")
        for child in children:  # the start line: every writer is ready and waiting
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcome = Outcome()
        for child in children:
            out, errors = child.communicate(timeout=WRITE_TIMEOUT)
            assert child.returncode == 0, f"a writer failed ({child.returncode}):\n{errors}"
            for line in out.splitlines():
                said = json.loads(line)
                key = (int(said["writer"]), int(said["index"]))
                if "error" in said:
                    assert said["message"], f"a soko error without a message: {said}"
                    outcome.errors.append(said)
                else:
                    outcome.committed[key] = str(said["version"])
        return outcome
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def check_writers(
    outcome: Outcome, *, seed: int, project: str, writers: int, versions: int, out: Path
) -> int:
    """Gap-free collections whose every version downloads as its writer wrote it, holding
    every commit a writer was told succeeded; returns the number of versions."""
    seen: dict[tuple[int, int], str] = {}

    def expected(artifact: Artifact) -> dict[str, bytes]:
        key = (int(artifact.metadata["writer"]), int(artifact.metadata["index"]))
        assert key not in seen, f"{key} committed twice: {seen[key]} and {artifact.version}"
        seen[key] = f"{artifact.collection_name}:{artifact.version}"
        return writer_files(seed, *key)

    counts = check_every_version(project, expected, out, where=f"{writers} writers")
    for key, version in outcome.committed.items():
        assert key in seen, f"writer {key[0]} committed its version {key[1]} as {version}: lost"
        assert seen[key].endswith(f":{version}"), (key, version, seen[key])
    failed = {(int(e["writer"]), int(e["index"])) for e in outcome.errors}  # type: ignore[call-overload]
    assert set(seen) <= set(outcome.committed) | failed, "a version nobody logged"
    assert len(outcome.committed) + len(failed) == writers * versions
    return sum(counts.values())
