"""16 concurrent writers: 16 processes log into three shared collections at once, on the
embedded store and through one ``soko server``.

Every commit succeeds or raises a soko error with a message; afterwards each collection is
numbered v0..vN-1 with no gap and no repeat, ``latest`` names the newest, every version
downloads byte for byte as its writer wrote it (regenerated from the seed), and every
commit a writer was told succeeded is there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from server_fixtures import SokoServer, point_sdk_at, unique_project
from torture_support import Sizes
from torture_writers import check_writers, run_writers

pytestmark = [pytest.mark.torture, pytest.mark.integration]

WRITERS = 16
COLLECTIONS = 3


def _child_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    return {**env, "SOKO_SILENT": "true", **overrides}


def test_16_writers_on_the_embedded_store(
    soko_env: object, tmp_path: Path, torture_sizes: Sizes, torture_seed: int
) -> None:
    store = os.environ["SOKO_DIR"]
    envs = [
        _child_env(SOKO_DIR=store, SOKO_CACHE_DIR=str(tmp_path / f"cache{w}"))
        for w in range(WRITERS)
    ]
    workdir = tmp_path / "writers"
    workdir.mkdir()
    outcome = run_writers(
        envs,
        seed=torture_seed,
        versions=torture_sizes.writers_versions,
        collections=COLLECTIONS,
        project="race",
        workdir=workdir,
    )
    committed = check_writers(
        outcome,
        seed=torture_seed,
        project="race",
        writers=WRITERS,
        versions=torture_sizes.writers_versions,
        out=tmp_path / "out",
    )
    print(f"torture figures: embedded, {WRITERS} writers, {committed} versions committed")


def test_16_writers_through_one_server(
    soko_server: SokoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    torture_sizes: Sizes,
    torture_seed: int,
    no_soko_run: None,
) -> None:
    project = unique_project("race")
    envs = [
        _child_env(
            SOKO_BASE_URL=soko_server.url,
            SOKO_API_KEY=soko_server.admin_key,
            SOKO_DIR=str(tmp_path / f"client{w}"),
            SOKO_CACHE_DIR=str(tmp_path / f"cache{w}"),
        )
        for w in range(WRITERS)
    ]
    workdir = tmp_path / "writers"
    workdir.mkdir()
    outcome = run_writers(
        envs,
        seed=torture_seed,
        versions=torture_sizes.writers_versions,
        collections=COLLECTIONS,
        project=project,
        workdir=workdir,
    )
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "reader", monkeypatch=monkeypatch
    )
    committed = check_writers(
        outcome,
        seed=torture_seed,
        project=project,
        writers=WRITERS,
        versions=torture_sizes.writers_versions,
        out=tmp_path / "out",
    )
    print(f"torture figures: one server, {WRITERS} writers, {committed} versions committed")
