"""Two servers on one PostgreSQL database and one S3 bucket (moto), 8 writers spread over
both: the same promises as one server (gap-free numbering, byte-identical downloads,
``latest`` the newest, no lost commit), and every version reads the same through the
server that did not write it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_fixtures import (
    S3_TEST_ENV,
    SokoServer,
    fresh_pg_database,
    new_bucket,
    point_sdk_at,
    unique_project,
)
from torture_checks import assert_downloads_exactly, collection_names, versions_of
from torture_support import Sizes, writer_files
from torture_writers import check_writers, run_writers

from soko.client import connect

pytestmark = [pytest.mark.torture, pytest.mark.integration]

WRITERS = 8
COLLECTIONS = 2


@pytest.fixture
def two_servers(moto_server: str, tmp_path: Path) -> Iterator[tuple[SokoServer, SokoServer]]:
    with fresh_pg_database() as database:
        yield from _two_servers(moto_server, database, tmp_path)


def _two_servers(
    moto_server: str, database: str, tmp_path: Path
) -> Iterator[tuple[SokoServer, SokoServer]]:
    bucket = new_bucket(moto_server)
    options = dict(
        db=database,
        store=f"s3://{bucket}/torture",
        s3_endpoint_url=moto_server,
        env=S3_TEST_ENV,
        admin_key="soko_torture_two_servers_admin_k3y0123456789",
    )
    first = SokoServer(tmp_path / "server-a", **options)  # type: ignore[arg-type]
    try:
        second = SokoServer(tmp_path / "server-b", **options)  # type: ignore[arg-type]
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def test_8_writers_through_two_servers_on_one_database_and_bucket(
    two_servers: tuple[SokoServer, SokoServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    torture_sizes: Sizes,
    torture_seed: int,
    no_soko_run: None,
) -> None:
    servers = two_servers
    project = unique_project("two")
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    envs = [
        {
            **base,
            **S3_TEST_ENV,
            "SOKO_SILENT": "true",
            "SOKO_BASE_URL": servers[w % 2].url,
            "SOKO_API_KEY": servers[w % 2].admin_key,
            "SOKO_DIR": str(tmp_path / f"client{w}"),
            "SOKO_CACHE_DIR": str(tmp_path / f"cache{w}"),
        }
        for w in range(WRITERS)
    ]
    workdir = tmp_path / "writers"
    workdir.mkdir()
    versions = torture_sizes.cloud_writers_versions
    outcome = run_writers(
        envs,
        seed=torture_seed,
        versions=versions,
        collections=COLLECTIONS,
        project=project,
        workdir=workdir,
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    point_sdk_at(servers[0], servers[0].admin_key, tmp_path=tmp_path / "a", monkeypatch=monkeypatch)
    committed = check_writers(
        outcome,
        seed=torture_seed,
        project=project,
        writers=WRITERS,
        versions=versions,
        out=tmp_path / "out-a",
    )

    # The same versions through the other server, each written by either of them.
    connect.reset()
    point_sdk_at(servers[1], servers[1].admin_key, tmp_path=tmp_path / "b", monkeypatch=monkeypatch)
    read_back = 0
    for collection in collection_names(project):
        for artifact in versions_of(project, collection):
            key = (int(artifact.metadata["writer"]), int(artifact.metadata["index"]))
            root = tmp_path / "out-b" / collection / artifact.version
            assert_downloads_exactly(
                artifact, writer_files(torture_seed, *key), root, where="through server b"
            )
            read_back += 1
    assert read_back == committed
    print(f"torture figures: two servers, {WRITERS} writers, {committed} versions committed")
