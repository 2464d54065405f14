"""Memory of a log through a server that scales: for 5,000 and then 50,000 files of 1 KiB,
a fresh ``soko server`` (SQLite + a blob folder) and a client process that logs the
folder, then another that logs it again; the clients' peak RSS from ``ru_maxrss``, the
server's from its ``VmHWM``.

Neither side may hold something per file that a million files would make a gigabyte of:
the client makes and uploads its sources a slice at a time and asks the missing-blob
question a slice at a time, the server checks the commit's possession a slice at a time.
What is bounded whatever the number of files is made small here, so that it is reached
by the smaller log and does not hide a per-file cost below its bound: the client's bytes
kept from hashing (``HELD_BYTES_MAX``, turned off), its slice of sources (2,048: two
upload batches, not 16) and the window of bytes ``add_dir`` gathers before it sends them
(1 MiB, not 64). A re-log of the same folder asks about no file (its content is
committed), and its client keeps nothing per file beyond what its draft holds. A log of
the folder added inside the run, whose files ``add_dir`` sent as it hashed them, holds no
more per file than the one that uploads them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from measured_children import make_files, run_measured, status_kib
from server_fixtures import SokoServer

pytestmark = pytest.mark.integration

SMALL, LARGE = 5_000, 50_000
CLIENT_GROWTH_PER_FILE = 650
"""Bytes of the client's peak RSS per file logged, at most, from SMALL to LARGE files:
about 310 bytes a file here when this was written (370 with the logged version's blob
sizes and the manifest's digest set built at the commit, and each upload batch's body
kept until its slice ended), 540 on a later machine, where a log whose files ``add_dir``
sent took 570. The peak comes while the files are uploaded: the draft and the set of
missing digests grow with the files, the upload threads' buffers do not."""
RELOG_GROWTH_PER_FILE = 250
"""The same for the client that logs the same folder again: about 110 bytes a file when
this was written (its draft), 310 while it built the manifest's digest set and the
logged version's blob sizes at the commit."""
SERVER_GROWTH_PER_FILE = 1100
"""The same for the server, about 600 to 800 bytes a file when this was written (1,350
before its allocator kept two arenas and the commit parsed the manifest from its text
with the bytes let go). Most of it is not per file: the page caches of the server's
SQLite connections fill over the first tens of thousands of blobs recorded. The commit
itself costs about 200 bytes a file (the manifest's text while its columns are made)."""

LOG = textwrap.dedent(
    """
    import os, resource, sys, soko
    import soko.client.http_capture, soko.sdk.draft, soko.sdk.transfer
    from soko.client.http import HttpBackend

    soko.sdk.draft.HELD_BYTES_MAX = 0
    soko.sdk.transfer._UPLOAD_SLICE = 2048
    soko.client.http_capture.WINDOW_BYTES = 1024 * 1024
    soko.client.http_capture.SENDERS = 2
    asked = []
    question = HttpBackend.missing_blobs
    def counted(self, digests, **kwargs):
        digests = list(digests)
        asked.append(len(digests))
        return question(self, digests, **kwargs)
    HttpBackend.missing_blobs = counted
    def added():
        artifact = soko.Artifact("data", "dataset")
        artifact.add_dir(sys.argv[1])
        return artifact
    # Added outside the run, the files are uploaded by the log; inside, by add_dir.
    staged = os.environ["SCALE_STAGED"] == "1"
    artifact = None if staged else added()
    with soko.init(project="scale-staged" if staged else "scale") as run:
        logged = run.log_artifact(artifact or added()).wait()
    print(logged.version, max(asked, default=0))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def log_through(
    server: SokoServer, data: Path, base: Path, *, staged: bool = False
) -> tuple[int, list[str]]:
    """Peak RSS (KiB) of a client process that logs *data* through *server*, and the
    lines it printed before it; with *staged*, the files added inside the run (sent by
    ``add_dir``) into a project of their own."""
    env = {
        "SCALE_STAGED": "1" if staged else "0",
        "SOKO_DIR": str(base / "client"),
        # A stat cache of its own for the staging client: files it knows are not read.
        "SOKO_CACHE_DIR": str(base / ("cache-staged" if staged else "cache")),
        "SOKO_BASE_URL": server.url,
        "SOKO_API_KEY": server.admin_key,
    }
    return run_measured(LOG, data, cwd=base, env=env)


def test_peak_memory_of_a_log_through_a_server_grows_by_a_bounded_amount(tmp_path: Path) -> None:
    client: dict[int, int] = {}
    staging: dict[int, int] = {}
    relogged: dict[int, int] = {}
    served: dict[int, int] = {}
    for count in (SMALL, LARGE):
        base = tmp_path / str(count)
        make_files(base / "data", count)
        root = base / "server"
        server = SokoServer(root, db=f"sqlite:///{root / 'meta.db'}", store=str(root / "blobs"))
        try:
            client[count], (first,) = log_through(server, base / "data", base)
            assert first == f"v0 {count}"  # every file asked about, then logged
            served[count] = status_kib(server.process.pid, "VmHWM")
            # The same folder again: the same version, and only its manifest asked about.
            relogged[count], (again,) = log_through(server, base / "data", base)
            assert again == "v0 1"
            # Sent while hashed: the log asks about its manifest only.
            staging[count], (staged,) = log_through(server, base / "data", base, staged=True)
            assert staged == "v0 1"
        finally:
            server.stop()
    for side, peaks, bound in (
        ("client", client, CLIENT_GROWTH_PER_FILE),
        ("staging client", staging, CLIENT_GROWTH_PER_FILE),
        ("re-logging client", relogged, RELOG_GROWTH_PER_FILE),
        ("server", served, SERVER_GROWTH_PER_FILE),
    ):
        per_file = (peaks[LARGE] - peaks[SMALL]) * 1024 / (LARGE - SMALL)
        assert per_file < bound, (
            f"the {side}'s peak RSS grew {per_file:.0f} bytes per file ({peaks[SMALL] // 1024} "
            f"MiB for {SMALL:,} files, {peaks[LARGE] // 1024} MiB for {LARGE:,})"
        )
