"""What a client keeps of the versions it logged through a server.

The server serves a blob only through a version that names it, and lends a blob to a
commit of another project only through a source version the committer names. A client
keeps the manifest of the version it logged last and makes its blobs into members only
when a download or a commit asks: the version must still be found then, by a commit into
another project of the same files (which uploads nothing) and by a download from the same
process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import server_fixtures
from server_fixtures import SokoServer, point_sdk_at, unique_project

import soko
from soko.client.http import HttpBackend
from soko.core.digests import Digest

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server


def test_a_logged_version_lends_its_blobs_and_serves_a_download_from_the_same_process(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"f{i}.txt").write_bytes(f"file {i} of the logged version".encode())
    uploaded: list[Digest] = []
    original = HttpBackend.store_blobs

    def recording(self: HttpBackend, sources: Any, **kwargs: Any) -> Any:
        uploaded.extend(s.digest for s in sources)
        return original(self, sources, **kwargs)

    monkeypatch.setattr(HttpBackend, "store_blobs", recording)
    logged = []
    for project in (unique_project("lender"), unique_project("borrower")):
        # Added outside the run, the files are uploaded by the log (add_dir in a run sends
        # them while it hashes them).
        artifact = soko.Artifact("data", "dataset")
        artifact.add_dir(str(data))
        with soko.init(project=project) as run:
            run.log_artifact(artifact).wait()
        logged.append(artifact)
    first, second = logged
    # The second project's commit borrowed the three blobs through the first version.
    assert sorted(d.raw for d in uploaded) == sorted(
        e.blob_digest().raw for e in first.manifest.entries.values()
    )
    root = Path(second.download(str(tmp_path / "out")))
    assert sorted(p.name for p in root.iterdir()) == ["f0.txt", "f1.txt", "f2.txt"]
    assert (root / "f2.txt").read_bytes() == b"file 2 of the logged version"
