"""The child of test_kill_while_logging: logs step after step into the embedded store of
SOKO_DIR until it is killed.

Usage: ``python kill_child.py SEED FIRST_STEP WORKDIR``. It prints one JSON line when it is
ready, one before each step (``begin``) and one after the step's version is committed
(``done``), flushed, so that the parent knows what it may expect whatever the moment of
the kill.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import torture_support

import soko


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> None:
    seed, first, workdir = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    say(ready=first)
    with soko.init(project="torture", job_type="kill") as run:
        for index in itertools.count(first):
            step = torture_support.step(seed, index)
            folder = workdir / f"step{index}"
            torture_support.write_files(folder, step.files(seed))
            say(begin=index)
            artifact = soko.Artifact(step.collection, "dataset", metadata=step.metadata)
            artifact.add_dir(str(folder))
            run.log_artifact(artifact, aliases=[step.alias]).wait()
            say(done=index, version=artifact.version, collection=step.collection)


if __name__ == "__main__":
    main()
