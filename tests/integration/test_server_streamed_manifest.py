"""A large manifest goes to the server a slice at a time: the client hashes its pieces,
then sends them as the body of one upload, never holding its bytes whole. The server
checks the body against the digest as it stores it, so a commit that succeeds is one
whose streamed bytes are the manifest's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import server_fixtures
from server_fixtures import ServerEnv, unique_project

import soko
import soko.client.http
from soko.client.http_session import ApiSession

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
server_env = server_fixtures.server_env

FILES = {f"d{i % 3}/f{i:03}.txt": f"content {i}".encode() for i in range(40)}


def _log(project: str, folder: Path) -> str:
    with soko.init(project=project) as run:
        artifact = soko.Artifact("data", "dataset")
        artifact.add_dir(str(folder))
        return run.log_artifact(artifact).wait().version


def test_a_large_manifest_is_uploaded_in_pieces_and_reads_back(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(soko.client.http, "STREAM_MANIFEST_AT", 10)
    puts: list[tuple[str, Any]] = []
    call = ApiSession.call

    def spied(self: ApiSession, method: str, path: str, **kwargs: Any) -> Any:
        if method == "PUT":
            puts.append((path, kwargs.get("content")))
        return call(self, method, path, **kwargs)

    monkeypatch.setattr(ApiSession, "call", spied)
    folder = tmp_path / "data"
    for relative, content in FILES.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    project = unique_project()

    assert _log(project, folder) == "v0"
    ((path, content),) = puts
    assert path.startswith("/blobs/xxh128/")
    assert not isinstance(content, bytes)  # the pieces, made as they are sent
    sent = b"".join(content)
    assert sent.startswith(b'{"version":1') and b"".join(content) == sent  # again, for a retry

    artifact = soko.Api().artifact(f"{project}/data:v0")
    assert len(artifact.manifest.entries) == len(FILES)
    got = Path(artifact.download(str(tmp_path / "out")))
    assert {p.relative_to(got).as_posix(): p.read_bytes() for p in got.rglob("*.txt")} == FILES
    # The same files again: the same manifest digest, so the same version, nothing sent.
    assert _log(project, folder) == "v0"
    assert len(puts) == 1
