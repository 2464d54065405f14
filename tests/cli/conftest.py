"""Fixtures of the command-line tests: the real ``soko`` executable on an isolated store."""

from __future__ import annotations

import pytest
from cli_helpers import RunSoko, run_soko


@pytest.fixture
def soko_cli(soko_env: object) -> RunSoko:
    """``soko_cli("artifact", "ls", "proj")`` runs ``soko`` in a subprocess and returns the
    finished process; SOKO_DIR, SOKO_CACHE_DIR and the working directory are the test's."""
    del soko_env
    return run_soko
