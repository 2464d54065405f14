"""Memory of a download through a server that scales: for 5,000 and then 25,000 files of
1 KiB, logged through a ``soko server`` (SQLite + a blob folder), then downloaded through
a server started again (nothing of the version held) by a client process, into an empty
folder with an empty download cache; the client's peak RSS from ``ru_maxrss``, the
server's from its ``VmHWM`` reset before the download (``/proc/<pid>/clear_refs``).

Neither side may hold something per file that a million files would make a gigabyte of:
the client downloads a slice of entries at a time (2,048 here, so that the smaller
download fills its slices too), and both sides know which blobs a version names from
arrays of its manifest's digests (about 40 bytes a blob), not a map of objects (about
180). The files downloaded are the files logged.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from measured_children import make_files, run_measured, status_kib
from server_fixtures import SokoServer
from test_server_scale_memory import log_through

pytestmark = pytest.mark.integration

SMALL, LARGE = 5_000, 25_000
CLIENT_GROWTH_PER_FILE = 600
"""Bytes of the client's peak RSS per file downloaded, at most, from SMALL to LARGE files.
About 225 when this was written, most of it the manifest read whole (its bytes and its
columns); a slice of entries held for every file instead of one slice at a time made it
about 1,550 (seen with slices of 16,384 entries, which 25,000 files do not fill)."""
SERVER_GROWTH_PER_FILE = 800
"""The same for the server's download alone, from a server that did not commit the
version: about 460 when this was written (the manifest parsed, and its members kept as a
:class:`~soko.core.digest_index.DigestIndex`); about 1,300 with the members kept as a map
of digests."""

DOWNLOAD = textwrap.dedent(
    """
    import resource, sys, soko
    import soko.sdk.transfer

    soko.sdk.transfer._DOWNLOAD_SLICE = 2048
    with soko.init(project="scale") as run:
        run.use_artifact("data:latest").download(root=sys.argv[1])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def download_through(server: SokoServer, root: Path, base: Path) -> int:
    """Peak RSS (KiB) of a client process that downloads the logged version into *root*
    through *server*, with a download cache of its own (empty)."""
    env = {
        "SOKO_DIR": str(base / "reader"),
        "SOKO_CACHE_DIR": str(base / "reader-cache"),
        "SOKO_BASE_URL": server.url,
        "SOKO_API_KEY": server.admin_key,
    }
    peak, _ = run_measured(DOWNLOAD, root, cwd=base, env=env)
    return peak


def same_files(data: Path, root: Path) -> bool:
    names = sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file())
    got = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    return names == got and all((data / n).read_bytes() == (root / n).read_bytes() for n in names)


def test_peak_memory_of_a_download_through_a_server_grows_by_a_bounded_amount(
    tmp_path: Path,
) -> None:
    client: dict[int, int] = {}
    served: dict[int, int] = {}
    for count in (SMALL, LARGE):
        base = tmp_path / str(count)
        make_files(base / "data", count)
        root = base / "server"
        server = SokoServer(root, db=f"sqlite:///{root / 'meta.db'}", store=str(root / "blobs"))
        try:
            _, (logged,) = log_through(server, base / "data", base)
            assert logged == f"v0 {count}"
        finally:
            server.stop()
        # A server that did not commit the version: nothing of its manifest is held yet.
        server = SokoServer(
            root,
            db=f"sqlite:///{root / 'meta.db'}",
            store=str(root / "blobs"),
            admin_key=server.admin_key,
        )
        try:
            # The peak from here on is the download's: the start's is forgotten.
            Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
            before = status_kib(server.process.pid, "VmRSS")
            client[count] = download_through(server, base / "out", base)
            served[count] = status_kib(server.process.pid, "VmHWM") - before
        finally:
            server.stop()
        assert same_files(base / "data", base / "out")
    for side, peaks, bound in (
        ("client", client, CLIENT_GROWTH_PER_FILE),
        ("server", served, SERVER_GROWTH_PER_FILE),
    ):
        per_file = (peaks[LARGE] - peaks[SMALL]) * 1024 / (LARGE - SMALL)
        assert per_file < bound, (
            f"the {side}'s peak RSS grew {per_file:.0f} bytes per file ({peaks[SMALL]} KiB "
            f"for {SMALL:,} files, {peaks[LARGE]} KiB for {LARGE:,})"
        )
