"""W&B's artifact exceptions (``wandb.sdk.artifacts.exceptions``), from :mod:`soko.errors`."""

from __future__ import annotations

from soko.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    ArtifactStatusError,
    WaitTimeoutError,
)

__all__ = [
    "ArtifactFinalizedError",
    "ArtifactNotLoggedError",
    "ArtifactStatusError",
    "WaitTimeoutError",
]
