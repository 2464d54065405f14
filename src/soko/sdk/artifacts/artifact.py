"""``wandb.sdk.artifacts.artifact``: soko's Artifact under W&B's module path."""

from __future__ import annotations

from soko.sdk.artifact import Artifact

__all__ = ["Artifact"]
