"""soko: version datasets and models as artifacts, with the W&B artifacts API.

``import soko as wandb`` runs W&B artifact code on an embedded store with no server.
"""

from __future__ import annotations

from soko import errors
from soko.sdk.artifact import Artifact
from soko.sdk.entry import ManifestEntry

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ManifestEntry",
    "__version__",
    "errors",
]
