"""W&B's module paths (``wandb.sdk.artifacts.*``) for the names code imports from them, so
that an import rewritten from ``wandb`` to ``soko`` finds the same names."""
