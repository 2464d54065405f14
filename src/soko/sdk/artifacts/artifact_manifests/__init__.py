"""``wandb.sdk.artifacts.artifact_manifests``: the manifest versions (soko writes v1)."""
