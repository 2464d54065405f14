"""``add_dir`` inside a run sends a folder's small files to the server as it hashes them,
for the run's project; the log of that draft then asks the server nothing about them.
What the capture did not deliver is found by the log (another project) or by the commit
(a blob gone since), and uploaded from the files."""

from __future__ import annotations

from pathlib import Path

import pytest
import server_fixtures
from server_fixtures import SokoServer, point_sdk_at

import soko
from soko.client import http_capture
from soko.client.http_session import ApiSession
from soko.wire.framing import read_frames

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server


def _folder(root: Path, count: int) -> dict[str, bytes]:
    files = {f"d{i % 3}/f{i:04}.txt": f"content {i}".encode() for i in range(count)}
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return files


def _downloaded(root: str) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in Path(root).rglob("*") if p.is_file()
    }


@pytest.fixture
def routes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of each API request the SDK makes; a missing-blob question in bytes with
    the number of digests it asks about (``/blobs/missing/raw 1``)."""
    seen: list[str] = []
    call = ApiSession.call

    def recorded(self: ApiSession, method: str, path: str, **kwargs: object) -> object:
        content = kwargs.get("content")
        if path == "/blobs/missing/raw" and isinstance(content, bytes):
            path = f"{path} {len(content) // 16}"  # raw xxh128 digests
        seen.append(path)
        return call(self, method, path.split()[0], **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ApiSession, "call", recorded)
    return seen


def test_a_folder_staged_by_add_dir_is_logged_without_the_missing_question(
    soko_server: SokoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    routes: list[str],
) -> None:
    point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    files = _folder(tmp_path / "data", 300)
    with soko.init(project="staging-asks-nothing") as run:
        artifact = soko.Artifact("staged", "dataset")
        artifact.add_dir(str(tmp_path / "data"))
        sent = routes.count("/blobs/batch")
        assert sent >= 1
        del routes[:]
        run.log_artifact(artifact).wait()
    # The manifest's own blob is asked about and sent; no file is.
    assert [r for r in routes if r.startswith("/blobs/")] == [
        "/blobs/missing/raw 1",
        "/blobs/batch",
    ]
    assert _downloaded(artifact.download(root=str(tmp_path / "out"))) == files


def test_a_draft_logged_into_another_project_uploads_its_blobs_there(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    files = _folder(tmp_path / "data", 50)
    with soko.init(project="staging-first"):
        artifact = soko.Artifact("moved", "dataset")
        artifact.add_dir(str(tmp_path / "data"))
    with soko.init(project="staging-second") as run:
        run.log_artifact(artifact).wait()
    logged = soko.Api().artifact("staging-second/moved:v0")
    assert _downloaded(logged.download(root=str(tmp_path / "out"))) == files


def test_blobs_the_capture_counted_but_the_server_lacks_are_uploaded_by_the_commits_retry(
    soko_server: SokoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    routes: list[str],
) -> None:
    # As if the server had swept the blobs between add_dir and the commit: the capture
    # counts its requests as confirmed without sending them.
    point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)

    def counted_not_sent(self: http_capture.UploadCapture, body: bytes, count: int) -> None:
        with self._lock:
            self._confirmed += count
        self._slots.release()

    monkeypatch.setattr(http_capture.UploadCapture, "_post", counted_not_sent)
    files = _folder(tmp_path / "data", 120)
    with soko.init(project="staging-swept") as run:
        artifact = soko.Artifact("swept", "dataset")
        artifact.add_dir(str(tmp_path / "data"))
        run.log_artifact(artifact).wait()
    assert routes.count("/versions") == 2  # refused, then sent again after the upload
    assert routes.count("/blobs/batch") >= 1
    assert _downloaded(artifact.download(root=str(tmp_path / "out"))) == files


def test_a_fresh_client_sends_at_add_only_what_the_project_lacks(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "one", monkeypatch=monkeypatch
    )
    files = _folder(tmp_path / "data", 200)
    with soko.init(project="staging-fresh-client") as run:
        first = soko.Artifact("fresh", "dataset")
        first.add_dir(str(tmp_path / "data"))
        run.log_artifact(first).wait()
    # Another machine: nothing in its stat cache, so add_dir reads every file again.
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "two", monkeypatch=monkeypatch
    )
    sent: list[bytes] = []
    post = http_capture.UploadCapture._post

    def recorded(capture: http_capture.UploadCapture, body: bytes, count: int) -> None:
        sent.extend(data for _, data in read_frames(body))
        post(capture, body, count)

    monkeypatch.setattr(http_capture.UploadCapture, "_post", recorded)
    (tmp_path / "data" / "d1/f0001.txt").write_bytes(b"changed")
    files["d1/f0001.txt"] = b"changed"
    with soko.init(project="staging-fresh-client") as run:
        second = soko.Artifact("fresh", "dataset")
        second.add_dir(str(tmp_path / "data"))
        run.log_artifact(second).wait()
    assert sent == [b"changed"]
    assert second.version == "v1"
    assert _downloaded(second.download(root=str(tmp_path / "out"))) == files
