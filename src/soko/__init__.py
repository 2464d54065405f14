"""soko: version datasets and models as artifacts, with the W&B artifacts API.

``import soko as wandb`` runs W&B artifact code on an embedded store with no server.
"""

from __future__ import annotations

import importlib
from typing import IO, TYPE_CHECKING, Any

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
    # ``soko.run`` is the current run, which changes: it cannot be a plain module global;
    # so are ``soko.config`` and ``soko.summary``, the current run's.
    if name == "run":
        return _current_run()
    if name in ("config", "summary"):
        return getattr(_running(name), name)
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'soko' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "run"})


def _current_run() -> Run | None:
    from soko.sdk.run import current_run

    return current_run()


def _running(name: str) -> Run:
    run = _current_run()
    if run is None:
        # W&B raises its base error here too.
        raise errors.SokoError(f"You must call soko.init() before soko.{name}")
    return run


def log(
    data: dict[str, Any], step: int | None = None, commit: bool | None = None, **kwargs: Any
) -> None:
    """``soko.run.log(...)``: add *data* to the current run's history."""
    _running("log()").log(data, step=step, commit=commit, **kwargs)


def restore(
    name: str, run_path: str | None = None, replace: bool = False, root: str | None = None
) -> IO[str] | None:
    """W&B's ``restore``: a file kept with a run (the current one unless *run_path*),
    written under *root* (default: the current run's ``dir``, else the current folder) and
    returned open; a file there already is returned as it is unless *replace*."""
    import os

    run = _current_run()
    if run_path is None:
        if run is None:
            raise ValueError("run_path required when calling soko.restore before soko.init")
        run_path = "/".join(run.path)
    if root is None:
        root = run.dir if run is not None else os.getcwd()
    path = os.path.join(root, name)
    if os.path.exists(path) and not replace:
        return open(path)  # returned open, as W&B does
    from soko.sdk.api import Api

    found = Api().run(run_path).files([name])
    if not found:
        raise ValueError(f"File {name} not found in {run_path}.")
    return found[0].download(root=root, replace=True)


def save(
    glob_str: Any, base_path: Any = None, policy: str = "live", glob: bool = True
) -> list[str]:
    """``soko.run.save(...)``: keep the files matching *glob_str* with the current run."""
    return _running("save()").save(glob_str, base_path=base_path, policy=policy, glob=glob)


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
    "log",
    "log_artifact",
    "login",
    "restore",
    "save",
    "use_artifact",
]
