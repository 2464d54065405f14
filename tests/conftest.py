"""Fixtures shared by every test suite; only generic helpers belong here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
