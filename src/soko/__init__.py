"""soko: version datasets and models as artifacts, with the W&B artifacts API.

``import soko as wandb`` runs W&B artifact code on an embedded store with no server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from soko import errors
from soko.errors import CommError, Error, UsageError

if TYPE_CHECKING:
    from soko import data_types
    from soko.sdk.api import Api
    from soko.sdk.artifact import Artifact
    from soko.sdk.artifacts.artifact_ttl import ArtifactTTL
    from soko.sdk.data_types import Classes, Image, JoinedTable, Table
    from soko.sdk.entry import ManifestEntry
    from soko.sdk.run import Run, finish, init

# The SDK loads when a script first uses it, not with every ``soko.*`` import: the command
# line (``soko --help``, ``soko artifact ls``) imports soko's modules and never the SDK's
# media types.
_LAZY: dict[str, tuple[str, str | None]] = {
    "Api": ("soko.sdk.api", "Api"),
    "Artifact": ("soko.sdk.artifact", "Artifact"),
    "ArtifactTTL": ("soko.sdk.artifacts.artifact_ttl", "ArtifactTTL"),
    "Classes": ("soko.sdk.data_types", "Classes"),
    "Image": ("soko.sdk.data_types", "Image"),
    "JoinedTable": ("soko.sdk.data_types", "JoinedTable"),
    "ManifestEntry": ("soko.sdk.entry", "ManifestEntry"),
    "Run": ("soko.sdk.run", "Run"),
    "Table": ("soko.sdk.data_types", "Table"),
    "data_types": ("soko.data_types", None),
    "finish": ("soko.sdk.run", "finish"),
    "init": ("soko.sdk.run", "init"),
}


def __getattr__(name: str) -> Any:
    # ``soko.run`` is the current run, which changes: it cannot be a plain module global.
    if name == "run":
        return _current_run()
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'soko' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "run"})


def _current_run() -> Any:
    from soko.sdk.run import current_run

    return current_run()


def log_artifact(artifact_or_path: Any, *args: Any, **kwargs: Any) -> Artifact:
    """``soko.run.log_artifact(...)`` on the current run (one is started if none)."""
    from soko.sdk.run import init

    run = _current_run() or init()
    return run.log_artifact(artifact_or_path, *args, **kwargs)


def use_artifact(artifact_or_name: Any, *args: Any, **kwargs: Any) -> Artifact:
    """``soko.run.use_artifact(...)`` on the current run (one is started if none)."""
    from soko.sdk.run import init

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
