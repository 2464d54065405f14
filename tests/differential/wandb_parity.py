"""Comparing an artifact built by the `wandb` package with one built by soko."""

from __future__ import annotations

import json
from typing import Any


def wandb_contents(artifact: Any) -> dict[str, dict[str, Any]]:
    contents: dict[str, dict[str, Any]] = artifact.manifest.to_manifest_json()["contents"]
    return contents


def soko_contents(artifact: Any) -> dict[str, dict[str, Any]]:
    contents: dict[str, dict[str, Any]] = artifact.manifest.to_json()["contents"]
    return contents


def entry_bytes(contents: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each entry's JSON text, keys in the order the serialiser wrote them."""
    return {path: json.dumps(entry) for path, entry in contents.items()}


def assert_same_artifact(wandb_art: Any, soko_art: Any) -> None:
    """The manifest contents (per path, byte for byte), version digest and size agree."""
    expected, actual = wandb_contents(wandb_art), soko_contents(soko_art)
    assert sorted(actual) == sorted(expected)
    assert entry_bytes(actual) == entry_bytes(expected)
    assert soko_art.digest == wandb_art.manifest.digest()
    assert soko_art.size == wandb_art.size
    wandb_top = {k: v for k, v in wandb_art.manifest.to_manifest_json().items() if k != "contents"}
    soko_top = {k: v for k, v in soko_art.manifest.to_json().items() if k != "contents"}
    assert json.dumps(soko_top) == json.dumps(wandb_top)
