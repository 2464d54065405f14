"""A store shared by another account: a user who may not write to it lists and downloads
from it, and a change is refused with one line naming the store.

Read-only is real here: as an ordinary user the store's files lose their write bits; as
root (who ignores them) the command runs in a mount namespace where the store is a
read-only bind mount.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_helpers import RunSoko, TreeFactory, assert_user_error, soko_executable


def _chmod_tree(root: Path, *, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        os.chmod(path, (mode | stat.S_IWUSR) if writable else (mode & ~bits))


@contextmanager
def read_only(store: Path) -> Iterator[RunSoko]:
    """``soko`` run by an account that may read *store* but not write to it."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [soko_executable(), *args]
        if os.geteuid() == 0:
            if shutil.which("unshare") is None:
                pytest.fail("Running as root, the read-only store needs unshare(1).")
            script = (
                'mount --bind "$STORE" "$STORE" && mount -o remount,bind,ro "$STORE" && exec "$@"'
            )
            command = ["unshare", "-m", "sh", "-c", script, "sh", *command]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "STORE": str(store)},
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        if "mount:" in result.stderr or "unshare:" in result.stderr:
            pytest.fail(f"Cannot make the store read-only here: {result.stderr.strip()}")
        return result

    if os.geteuid() != 0:
        _chmod_tree(store, writable=False)
    try:
        yield run
    finally:
        if os.geteuid() != 0:
            _chmod_tree(store, writable=True)


def _snapshot(root: Path) -> dict[str, tuple[int, float]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_a_read_only_user_lists_and_downloads_a_shared_store(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory, tmp_path: Path
):
    data = make_tree({"a.txt": "alpha", "sub/b.txt": "beta"})
    assert soko_cli("artifact", "put", str(data), "--name", "team/ds").returncode == 0
    before = _snapshot(soko_env.store)
    with read_only(soko_env.store) as run:
        _list_download_and_refuse(run, soko_env.store, make_tree, tmp_path)
    assert _snapshot(soko_env.store) == before


def _list_download_and_refuse(
    run: RunSoko, store: Path, make_tree: TreeFactory, tmp_path: Path
) -> None:

    listing = run("artifact", "ls", "team")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[1].split()[:3] == ["ds", "dataset", "1"]
    for args in (
        ("artifact", "versions", "team/ds"),
        ("artifact", "show", "team/ds"),
        ("projects",),
        ("lineage", "team/ds"),
    ):
        result = run(*args)
        assert result.returncode == 0, (args, result.stderr)
    root = tmp_path / "copy"
    got = run("artifact", "get", "team/ds", "--root", str(root))
    assert got.returncode == 0, got.stderr
    assert (root / "sub" / "b.txt").read_text() == "beta"

    for args in (
        ("artifact", "alias", "add", "team/ds:v0", "gold"),
        ("artifact", "delete", "team/ds:v0"),
        ("artifact", "put", str(make_tree({"c.txt": "gamma"})), "--name", "team/ds"),
    ):
        assert_user_error(run(*args), 5, f"The soko store at {store} is read-only")
