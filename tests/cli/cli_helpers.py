"""Helpers for running the real ``soko`` executable (the installed console script)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SOKO = Path(sys.executable).with_name("soko")

RunSoko = Callable[..., subprocess.CompletedProcess[str]]
TreeFactory = Callable[..., Path]


@dataclass(frozen=True)
class CliTarget:
    """Where the ``soko`` of a test works: the embedded store or a live server (*server*,
    a ``server_fixtures.SokoServer``), in a project of the test's own."""

    kind: str
    project: str
    server: Any = None


def soko_executable() -> str:
    if not SOKO.is_file():
        pytest.fail(
            f"The soko executable is not installed next to {sys.executable}; "
            "run `pip install -e .` (the console script soko.cli.main:main).",
            pytrace=False,
        )
    return str(SOKO)


def run_soko(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``soko *args`` with this process's environment (plus *env*); text output."""
    return subprocess.run(
        [soko_executable(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    """A user's mistake: exit *code*, one line on stderr naming it, no traceback, no data."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, lines
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
