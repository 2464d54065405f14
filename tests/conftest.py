"""Fixtures shared by every test suite; only generic helpers belong here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

TreeFactory = Callable[..., Path]


def write_tree(root: Path, files: Mapping[str, bytes | str]) -> Path:
    """Create *files* (POSIX relative path -> content) under *root*; return *root*."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        target = root.joinpath(*relative.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
    return root


@pytest.fixture
def make_tree(tmp_path: Path) -> TreeFactory:
    """``make_tree({"a.txt": "x", "d/b.bin": b"..."}, name="tree")`` -> the tree's root."""
    counter = iter(range(1_000_000))

    def make(files: Mapping[str, bytes | str], *, name: str | None = None) -> Path:
        return write_tree(tmp_path / (name or f"tree{next(counter)}"), files)

    return make


@dataclass(frozen=True)
class SokoEnv:
    """Where an isolated test's embedded store, cache and working directory are."""

    store: Path
    cache: Path
    workdir: Path
    config: Path
    """The user's config folder (``SOKO_CONFIG_DIR``), where ``soko login`` writes."""


_SOKO_VARIABLES = (
    "SOKO_BASE_URL",
    "SOKO_API_KEY",
    "SOKO_ENTITY",
    "SOKO_PROJECT",
    "SOKO_LINK",
    "SOKO_CACHE_MAX",
    "SOKO_MODE",
    "SOKO_RUN_DIR",
    # W&B's counterparts, which soko honours too.
    "WANDB_ENTITY",
    "WANDB_PROJECT",
    "WANDB_DIR",
)


def _finish_current_run() -> None:
    import soko
    from soko.errors import SokoError

    # A test that provoked a failing log has checked that failure already; the run is
    # closed either way.
    with contextlib.suppress(SokoError):
        soko.finish()


@pytest.fixture(autouse=True)
def user_config_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the config file of the person running the tests: a login
    there would point every test at a server."""
    path = tmp_path_factory.mktemp("user-config")
    monkeypatch.setenv("SOKO_CONFIG_DIR", str(path))
    # Nor its store or cache: a draft that captures files writes into the embedded store
    # even in a test that never logs (``soko_env`` gives a test a store it looks at).
    scratch = tmp_path_factory.mktemp("scratch-store")
    monkeypatch.setenv("SOKO_DIR", str(scratch / "soko"))
    monkeypatch.setenv("SOKO_CACHE_DIR", str(scratch / "cache"))
    return path


@pytest.fixture
def soko_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_config_dir: Path
) -> Iterator[SokoEnv]:
    """An embedded store, cache and working directory of this test's own.

    SOKO_DIR and SOKO_CACHE_DIR point into tmp_path, other SOKO_* settings are cleared, the
    current directory is a fresh folder (downloads default to ``./artifacts``), and no
    backend or run survives from one test to the next.
    """
    from soko.client import connect

    env = SokoEnv(
        store=tmp_path / "soko",
        cache=tmp_path / "cache",
        workdir=tmp_path / "work",
        config=user_config_dir,
    )
    env.workdir.mkdir()
    for name in _SOKO_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOKO_DIR", str(env.store))
    monkeypatch.setenv("SOKO_CACHE_DIR", str(env.cache))
    monkeypatch.chdir(env.workdir)
    _finish_current_run()
    connect.reset()
    yield env
    _finish_current_run()
    connect.reset()
