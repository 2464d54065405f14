"""Memory of a log that scales: the log is a whole process, its peak RSS read from
``ru_maxrss``, for 40,000 and then 90,000 files of 1 KiB.

What a log holds per file (paths, digests, entries, stat-cache rows) must stay small:
the bytes of the files go to the store as they are hashed and are not kept until the log,
the draft and the manifest keep their entries as columns (no object per entry), the
manifest is encoded a slice at a time and read back an entry at a time. The bound is
per file added, so that a log of a million files stays within a known size.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from measured_children import make_files, run_measured

pytestmark = pytest.mark.integration

SMALL, LARGE = 40_000, 90_000
GROWTH_PER_FILE = 600
"""Bytes of peak RSS per file added, at most, from SMALL to LARGE files. The log's fixed
buffers fill over its first 30,000 to 40,000 files (the capture's pack index rows are
committed 32,768 at a time, the store's caches fill): measured from 10,000 files, they
made about 900 bytes a file of what is no growth at all, so SMALL is past them. The log
grew by 290 to 400 bytes per file from there when this was written (the missing-blob
question reads the manifest's digests in raw batches, a manifest of 50,000 entries or more
is hashed, indexed and written a slice at a time, never held whole). Entries as objects
cost about 700 bytes more a file, the files' bytes held until the log about 1,300 more
(both measured from 10,000 files)."""

LOG = textwrap.dedent(
    """
    import resource, sys, soko
    with soko.init(project="scale") as run:
        artifact = soko.Artifact("data", "dataset")
        artifact.add_dir(sys.argv[1])
        run.log_artifact(artifact).wait()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)
CHECK = textwrap.dedent(
    """
    import resource, sys, soko
    print(len(soko.Api().artifact("scale/data:latest").manifest.entries))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def peak_kib(script: str, argument: Path, base: Path) -> tuple[int, list[str]]:
    """Peak RSS (KiB) of *script* in a fresh process with its own store under *base*,
    and the lines it printed before it."""
    env = {"SOKO_DIR": str(base / "store"), "SOKO_CACHE_DIR": str(base / "cache")}
    return run_measured(script, argument, cwd=base, env=env)


def test_peak_memory_of_a_log_grows_by_a_bounded_amount_per_file(tmp_path: Path) -> None:
    peaks: dict[int, int] = {}
    for count in (SMALL, LARGE):
        base = tmp_path / str(count)
        make_files(base / "data", count)
        peaks[count], _ = peak_kib(LOG, base / "data", base)
        _, (entries,) = peak_kib(CHECK, base / "data", base)
        assert int(entries) == count  # every file was logged
    per_file = (peaks[LARGE] - peaks[SMALL]) * 1024 / (LARGE - SMALL)
    assert per_file < GROWTH_PER_FILE, (
        f"the log's peak RSS grew {per_file:.0f} bytes per file ({peaks[SMALL] // 1024} MiB "
        f"for {SMALL:,} files, {peaks[LARGE] // 1024} MiB for {LARGE:,})"
    )
