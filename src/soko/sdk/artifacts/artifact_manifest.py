"""``wandb.sdk.artifacts.artifact_manifest``: soko's manifest under W&B's name."""

from __future__ import annotations

from soko.sdk.manifest import ArtifactManifest

__all__ = ["ArtifactManifest"]
