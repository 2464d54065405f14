"""W&B's ``wandb.sdk.artifacts`` module paths, for code that imports from them:
``from soko.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry``."""
