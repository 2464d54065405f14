"""``wandb.sdk.artifacts.artifact_manifests.artifact_manifest_v1``: W&B's v1 manifest,
which is the one soko writes."""

from __future__ import annotations

from soko.sdk.manifest import ArtifactManifest as ArtifactManifestV1

__all__ = ["ArtifactManifestV1"]
