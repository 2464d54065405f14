"""Fixtures of the torture tests: the integration suite's servers and services, the sizes,
and the seed printed with every failure.

The torture tests reuse the integration helpers (``server_fixtures``, the moto fixture of
``tests/integration/conftest.py``) and the CLI helpers; their folders are put on the import
path here, as pytest does for a test folder's own modules.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator

import pytest
from torture_support import TESTS, Sizes, replay_hint, seed, sizes

for _folder in (TESTS / "integration", TESTS / "cli"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import server_fixtures  # noqa: E402


def _integration_conftest() -> object:
    # Imported under its own name: pytest imports it as ``conftest`` when the integration
    # tests run in the same session, and the two must not replace each other.
    name = "soko_integration_conftest"
    loaded = sys.modules.get(name)
    if loaded is None:
        spec = importlib.util.spec_from_file_location(name, TESTS / "integration" / "conftest.py")
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
    return loaded


moto_server = _integration_conftest().moto_server  # type: ignore[attr-defined]
soko_server = server_fixtures.soko_server
pg_database = server_fixtures.pg_database


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("torture") is not None:
        item.add_report_section("setup", "torture", replay_hint())


@pytest.fixture(scope="session")
def torture_sizes() -> Sizes:
    return sizes()


@pytest.fixture(scope="session")
def torture_seed() -> int:
    return seed()


@pytest.fixture
def no_soko_run() -> Iterator[None]:
    """No run and no backend of this process survives the test."""
    from soko.client import connect

    yield
    import soko
    from soko.errors import SokoError

    try:
        if soko.run is not None:
            soko.finish()
    except SokoError:
        pass
    connect.reset()
