"""A concurrent writer of test_concurrent_writers and test_two_servers.

Usage: ``python writer_child.py SEED WRITER VERSIONS COLLECTIONS PROJECT WORKDIR``; the
backend is whatever the environment names (SOKO_DIR, or SOKO_BASE_URL and SOKO_API_KEY).
It prints ``{"ready": WRITER}`` and waits for a line on its standard input, so that the
parent starts every writer at once; then it logs its versions and prints one JSON line per
commit: the version it got, or the soko error it raised (any other exception ends it with
a traceback, which the parent reports).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torture_support

import soko
from soko.errors import SokoError


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> None:
    seed, writer, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    collections, project, workdir = int(sys.argv[4]), sys.argv[5], Path(sys.argv[6])
    say(ready=writer)
    sys.stdin.readline()
    with soko.init(project=project, job_type="writer") as run:
        for index in range(count):
            folder = workdir / f"w{writer}-{index}"
            torture_support.write_files(folder, torture_support.writer_files(seed, writer, index))
            name = torture_support.writer_collection(writer, index, collections)
            artifact = soko.Artifact(name, "dataset", metadata={"writer": writer, "index": index})
            artifact.add_dir(str(folder))
            try:
                run.log_artifact(artifact).wait()
            except SokoError as exc:
                say(writer=writer, index=index, error=type(exc).__name__, message=str(exc))
                continue
            say(writer=writer, index=index, collection=name, version=artifact.version)


if __name__ == "__main__":
    main()
