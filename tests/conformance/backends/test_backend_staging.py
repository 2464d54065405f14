"""``add_dir`` inside a run stages a folder's small files on the backend as it hashes them
(``policy="mutable"``): the embedded store into its packs, a server for the run's project.
The log then finds them stored, and an edit after ``add_dir`` changes nothing, as with
W&B's staging copy."""

from __future__ import annotations

from pathlib import Path

from backend_suite import Backend, files_below, write

import soko
from soko.client.hashing import SERIAL_MAX
from soko.core.digests import Digest

LARGE = SERIAL_MAX + 1
"""Larger than a file hashing keeps the bytes of: only hashed at add, read by the log."""


def _digests(artifact: soko.Artifact) -> dict[str, Digest]:
    return {entry.path: entry.blob_digest() for entry in artifact.manifest.entries.values()}


def test_add_dir_in_a_run_stages_small_files_before_the_log(backend: Backend) -> None:
    files = {f"part/{i:03}.txt": f"sample {i}".encode() for i in range(300)}
    files["weights.bin"] = b"w" * LARGE
    for path, content in files.items():
        write(Path("data", path), content)
    with soko.init() as run:
        artifact = soko.Artifact("staged", "dataset")
        artifact.add_dir("data")
        digests = _digests(artifact)
        small = {digests[p] for p in files if p.startswith("part/")}
        missing = run.log_queue.backend.missing_blobs(
            list(digests.values()), entity=run.entity, project=run.project
        )
        assert small.isdisjoint(missing)
        Path("data/part/007.txt").write_text("edited after add_dir")
        run.log_artifact(artifact).wait()
    got = files_below(soko.Api().artifact("staged:v0").download(root="out"))
    assert got == files


def test_a_folder_added_outside_a_run_is_logged_from_its_files(backend: Backend) -> None:
    write("loose/a.txt", "a")
    write("loose/b.txt", "b")
    artifact = soko.Artifact("loose", "dataset")
    artifact.add_dir("loose")
    with soko.init() as run:
        run.log_artifact(artifact).wait()
    assert files_below(soko.Api().artifact("loose:v0").download(root="out")) == {
        "a.txt": b"a",
        "b.txt": b"b",
    }
