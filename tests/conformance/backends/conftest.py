"""The ``backend`` fixture: every case of this folder runs on each backend soko has.

- ``embedded``: the embedded store, in a fresh SOKO_DIR per case;
- ``server-sqlite``: a live ``soko server`` on SQLite and a blob folder;
- ``server-pg-s3``: a live ``soko server`` on PostgreSQL and an S3 bucket (moto).

The servers start once per session, not per case; cases are kept apart by a project of
their own (``SOKO_PROJECT``) and by unique names where a name is shared across projects (a
registry). A case marked ``@pytest.mark.needs(capability)`` is generated only for the
backends that have that capability (see ``backend_suite``). PostgreSQL or moto missing
fails the server cases under ``CI=true`` and skips them on a developer's machine, as in the
integration tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# The server fixtures live with the integration tests, which use them too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))

import server_fixtures
from backend_suite import MAINTENANCE, Backend
from server_fixtures import SokoServer, point_sdk_at

moto_server = server_fixtures.moto_server
pg_database = server_fixtures.pg_database
soko_server = server_fixtures.soko_server
cloud_server = server_fixtures.cloud_server

EMBEDDED = "embedded"
SERVER_SQLITE = "server-sqlite"
SERVER_PG_S3 = "server-pg-s3"

CAPABILITIES: dict[str, frozenset[str]] = {
    EMBEDDED: frozenset({MAINTENANCE}),
    SERVER_SQLITE: frozenset(),
    SERVER_PG_S3: frozenset(),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(*capabilities): generate the case only for backends that have them"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    needed: set[str] = set()
    for mark in metafunc.definition.iter_markers("needs"):
        needed.update(mark.args)
    kinds = [kind for kind, offered in CAPABILITIES.items() if needed <= offered]
    if not kinds:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no backend offers {needed}")
    params = [
        pytest.param(kind, id=kind, marks=() if kind == EMBEDDED else pytest.mark.integration)
        for kind in kinds
    ]
    metafunc.parametrize("backend", params, indirect=True)


def _finish_current_run() -> None:
    import soko
    from soko.errors import SokoError

    # A case that provoked a failing log has checked that failure already.
    with contextlib.suppress(SokoError):
        soko.finish()


def _run_cli(argv: Sequence[str]) -> dict[str, Any]:
    """A ``soko`` maintenance command run in this process; its JSON report and exit code."""
    from soko.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    report: dict[str, Any] = json.loads(out.getvalue())
    report["exit_code"] = code
    return report


@pytest.fixture
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    import soko
    from soko.client import connect

    kind: str = request.param
    maintenance = None
    if kind == EMBEDDED:
        request.getfixturevalue("soko_env")  # a fresh SOKO_DIR, cache and working directory
        maintenance = _run_cli
    else:
        server: SokoServer
        if kind == SERVER_SQLITE:
            server = request.getfixturevalue("soko_server")
        else:
            server = request.getfixturevalue("cloud_server").server
        point_sdk_at(server, server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    project = Backend.unique("conformance")
    monkeypatch.setenv("SOKO_PROJECT", project)
    connect.reset()
    handle = Backend(
        kind=kind,
        capabilities=CAPABILITIES[kind],
        entity=soko.Api().default_entity,
        project=project,
        maintenance=maintenance,
    )
    yield handle
    _finish_current_run()
    connect.reset()
