"""Fixtures of the command-line tests: the real ``soko`` executable on an isolated store,
or on a live soko server (the server fixtures of the integration tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import CliTarget, RunSoko, run_soko

# The server fixtures live with the integration tests, which use them too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

import server_fixtures
from server_fixtures import SokoServer, point_sdk_at, unique_project

soko_server = server_fixtures.soko_server


@pytest.fixture
def soko_cli(soko_env: object) -> RunSoko:
    """``soko_cli("artifact", "ls", "proj")`` runs ``soko`` in a subprocess and returns the
    finished process; SOKO_DIR, SOKO_CACHE_DIR and the working directory are the test's."""
    del soko_env
    return run_soko


@pytest.fixture(params=["embedded", "server"])
def cli_target(
    request: pytest.FixtureRequest,
    soko_env: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CliTarget]:
    """The test's ``soko`` commands (and its SDK) work on the embedded store, then on the
    session's server (SQLite and a folder) as its admin, in a project of their own."""
    del soko_env
    project = unique_project("cli")
    if request.param == "embedded":
        yield CliTarget("embedded", project)
        return
    server: SokoServer = request.getfixturevalue("soko_server")
    point_sdk_at(server, server.admin_key, tmp_path=tmp_path / "client", monkeypatch=monkeypatch)
    yield CliTarget("server", project, server)
