"""soko: version datasets and models as artifacts, with the W&B artifacts API.

``import soko as wandb`` runs W&B artifact code on an embedded store with no server.
"""

from __future__ import annotations

from typing import Any

from soko import data_types, errors
from soko.errors import CommError, Error, UsageError
from soko.sdk.api import Api
from soko.sdk.artifact import Artifact
from soko.sdk.artifacts.artifact_ttl import ArtifactTTL
from soko.sdk.data_types import Classes, Image, JoinedTable, Table
from soko.sdk.entry import ManifestEntry
from soko.sdk.run import Run, finish, init
from soko.sdk.run import current_run as _current_run


def __getattr__(name: str) -> Any:
    # ``soko.run`` is the current run, which changes: it cannot be a plain module global.
    if name == "run":
        return _current_run()
    raise AttributeError(f"module 'soko' has no attribute {name!r}")


def log_artifact(artifact_or_path: Any, *args: Any, **kwargs: Any) -> Artifact:
    """``soko.run.log_artifact(...)`` on the current run (one is started if none)."""
    run = _current_run() or init()
    return run.log_artifact(artifact_or_path, *args, **kwargs)


def use_artifact(artifact_or_name: Any, *args: Any, **kwargs: Any) -> Artifact:
    """``soko.run.use_artifact(...)`` on the current run (one is started if none)."""
    run = _current_run() or init()
    return run.use_artifact(artifact_or_name, *args, **kwargs)


def login(
    key: str | None = None, host: str | None = None, relogin: bool | None = None, **_ignored: Any
) -> bool:
    """Store credentials for a soko server; with the embedded store, succeed and do nothing."""
    from soko.client.login import login as _login

    return _login(key=key, host=host)


__version__ = "0.1.0"

__all__ = [
    "Api",
    "Artifact",
    "ArtifactTTL",
    "Classes",
    "CommError",
    "Error",
    "Image",
    "JoinedTable",
    "ManifestEntry",
    "Run",
    "Table",
    "UsageError",
    "__version__",
    "data_types",
    "errors",
    "finish",
    "init",
    "log_artifact",
    "login",
    "use_artifact",
]
