"""``wandb.sdk.artifacts.artifact_manifest_entry``: soko's entry under W&B's name."""

from __future__ import annotations

from soko.sdk.entry import ManifestEntry as ArtifactManifestEntry

__all__ = ["ArtifactManifestEntry"]
