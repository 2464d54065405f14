"""kill -9 while logging: a child logs version after version into the embedded store and is
killed with SIGKILL at a random moment, again and again.

After every kill the store checks clean (``check_store``; temp files of the killed write
are only notes), and at the end every committed version downloads byte for byte as the
step that logged it wrote it (regenerated from the seed, not taken from the child), every
step the child saw committed is there under its alias, and each collection is numbered
v0..vN-1 with no gap and no repeat. The steps mix 40-file batches (packs), a few small
files (loose blobs), files over the small-blob limit, new collections and re-logs of an
earlier step's content (same digest: the version only gains an alias).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torture_checks import check_every_version
from torture_support import HERE, Sizes, step

import soko
from soko.sdk.artifact import Artifact
from soko.service.fsck import check_store
from soko.service.store import Store

pytestmark = [pytest.mark.torture, pytest.mark.integration]

CHILD = HERE / "kill_child.py"


def _read_lines(child: subprocess.Popen[str]) -> list[dict[str, object]]:
    assert child.stdout is not None
    return [json.loads(line) for line in child.stdout.read().splitlines() if line.strip()]


def _run_and_kill(
    first: int, after_done: int, delay: float, *, seed: int, workdir: Path, env: dict[str, str]
) -> list[dict[str, object]]:
    """Start the child at step *first*, wait until it has committed *after_done* steps, then
    kill it *delay* seconds later; returns every line it printed.

    Waiting for commits (not for time) makes the work done between kills the same on a
    loaded machine as on an idle one; the random delay then picks the moment."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(seed), str(first), str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    lines: list[dict[str, object]] = []
    while not lines or sum("done" in line for line in lines) < after_done:
        said = child.stdout.readline()
        if not said:
            child.wait(timeout=60)
            pytest.fail(f"the logging child died ({child.returncode}):\n{child.stderr.read()}")
        lines.append(json.loads(said))
    # Not a wait for anything to happen or age: the SIGKILL landing at a random moment of
    # the child's next step, wherever that is, is what this test is about.
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    errors = child.stderr.read()
    lines += _read_lines(child)
    child.stdout.close()
    child.stderr.close()
    if child.returncode != -signal.SIGKILL:
        pytest.fail(f"the logging child ended by itself ({child.returncode}):\n{errors}")
    return lines


def test_kill_9_while_logging_loses_nothing_and_leaves_nothing_partial(
    soko_env: object, tmp_path: Path, torture_sizes: Sizes, torture_seed: int
) -> None:
    store_dir = Path(os.environ["SOKO_DIR"])
    env = {**os.environ, "SOKO_SILENT": "true"}
    rng = random.Random(f"{torture_seed}:kills")
    workdir = tmp_path / "child"
    next_step = 0
    begun: set[int] = set()
    done: dict[int, dict[str, object]] = {}
    waited_for = 0
    for kill in range(torture_sizes.kills):
        after_done = rng.choice([0, 0, 1, 2, 3])
        waited_for += after_done
        delay = rng.uniform(0.0, torture_sizes.kill_delay_max)
        lines = _run_and_kill(
            next_step, after_done, delay, seed=torture_seed, workdir=workdir, env=env
        )
        for line in lines:
            if "begin" in line:
                begun.add(int(line["begin"]))  # type: ignore[call-overload]
            if "done" in line:
                done[int(line["done"])] = line  # type: ignore[call-overload]
        next_step = max(begun, default=next_step - 1) + 1

        store = Store.open_local(store_dir)
        report = check_store(store)
        store.engine.dispose()
        moment = f"kill {kill}: {after_done} steps committed, then {delay:.3f}s"
        assert report.ok, (moment, report.problems)
        assert all(note.startswith("temp file ") for note in report.notes), report.notes

    # Every version: its step's content, byte for byte; every collection gap-free.
    def expected(artifact: Artifact) -> dict[str, bytes]:
        origin = int(artifact.metadata["origin"])
        return step(torture_seed, origin).files(torture_seed)

    counts = check_every_version("torture", expected, tmp_path / "out", where="after the kills")
    assert len(done) >= waited_for, (len(done), waited_for)

    # Every step the child saw committed is there, under its alias, with its content; a
    # step killed before it finished is there entirely or not at all.
    api = soko.Api()
    for index in sorted(begun):
        planned = step(torture_seed, index)
        name = f"torture/{planned.collection}:{planned.alias}"
        if index in done:
            found = api.artifact(name)
            assert found.version == done[index]["version"], (index, found.version)
        elif api.artifact_exists(name):
            found = api.artifact(name)
        else:
            continue
        assert found.metadata["origin"] == planned.origin, (index, found.metadata)

    versions = sum(counts.values())
    print(
        f"torture figures: {torture_sizes.kills} kills, {len(begun)} steps begun, "
        f"{len(done)} finished, {versions} versions committed in {len(counts)} collections"
    )
