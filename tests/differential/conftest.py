"""Shared set-up of the differential suite: the `wandb` package, offline, kept in a tmp dir.

wandb's default ``policy="mutable"`` copies every added file into its staging folder under
``WANDB_DATA_DIR``; pointing that (and its cache) at a temporary folder keeps the suite from
filling the home directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The comparison helpers assert; have pytest explain their failures.
pytest.register_assert_rewrite("wandb_parity")

_WANDB_ENV = ("WANDB_MODE", "WANDB_SILENT", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_DIR")


@pytest.fixture(scope="session", autouse=True)
def wandb_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("wandb-home")
    saved = {key: os.environ.get(key) for key in _WANDB_ENV}
    os.environ.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DATA_DIR=str(home / "data"),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_DIR=str(home),
    )
    try:
        yield home
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
