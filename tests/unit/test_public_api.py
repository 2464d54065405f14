"""The public API of ``soko`` is exactly ``soko.__all__``, and ``import soko``
loads none of the optional dependencies (the server, cloud and media extras)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import soko
import soko.errors

PUBLIC_NAMES = {
    "Api",
    "Artifact",
    "ArtifactTTL",
    "Classes",
    "CommError",
    "Error",
    "UsageError",
    "Image",
    "JoinedTable",
    "ManifestEntry",
    "Run",
    "Table",
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
}

DATA_TYPES = {
    "BoundingBoxes2D", "Classes", "Image", "ImageMask", "JoinedTable", "PartitionedTable", "Table",
}  # fmt: skip

ERROR_CLASSES = {
    "SokoError",
    "ValidationError",
    "ArtifactFinalizedError",
    "ArtifactNotLoggedError",
    "DigestMismatchError",
    "NotFoundError",
    "MissingBlobsError",
    "ConflictError",
    "TypeConflictError",
    "StoreError",
    "CorruptBlobError",
    "CommitError",
    "AuthenticationError",
    "PermissionDeniedError",
    # W&B's names (wandb.errors, wandb.sdk.artifacts.exceptions) and soko's additions
    "Error",
    "CommError",
    "UsageError",
    "UnsupportedError",
    "ArtifactStatusError",
    "WaitTimeoutError",
    "WrongTypeError",
    "MissingReferenceError",
    "ServerUnavailableError",
}

# The optional extras (``soko[server]``, ``soko[cloud]``, ``soko[media]``), what they pull
# in, and the package soko stands in for: ``import soko`` must work without any of them.
MUST_NOT_LOAD = (
    "fastapi",
    "starlette",
    "uvicorn",
    "httptools",
    "pydantic",
    "psycopg",
    "boto3",
    "botocore",
    "google.cloud",
    "numpy",
    "PIL",
    "pandas",
    "wandb",
)


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(soko.__all__) == sorted(PUBLIC_NAMES)
    assert len(soko.__all__) == len(set(soko.__all__))


def test_every_public_name_is_importable_from_soko() -> None:
    namespace: dict[str, object] = {}
    exec("from soko import *", namespace)  # AttributeError for a name __all__ lacks
    assert namespace.keys() >= PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(soko, name) is namespace[name]
    assert inspect.ismodule(soko.errors) and inspect.ismodule(soko.data_types)
    assert isinstance(soko.__version__, str) and soko.__version__
    for name in ("Api", "Artifact", "Image", "JoinedTable", "ManifestEntry", "Run", "Table"):
        assert inspect.isclass(getattr(soko, name)), name
    for name in ("finish", "init", "log_artifact", "login", "use_artifact"):
        assert callable(getattr(soko, name)), name


def test_the_current_run_is_an_attribute_but_not_exported() -> None:
    # soko.run changes as runs start and finish: a module __getattr__, not a name to copy.
    assert "run" not in soko.__all__
    assert hasattr(soko, "run")
    assert not hasattr(soko, "no_such_name")


def test_data_types_exports_the_wandb_data_type_names() -> None:
    assert sorted(soko.data_types.__all__) == sorted(DATA_TYPES)
    for name in DATA_TYPES:
        assert inspect.isclass(getattr(soko.data_types, name)), name
    assert soko.data_types.Table is soko.Table
    assert soko.data_types.Image is soko.Image
    assert soko.data_types.JoinedTable is soko.JoinedTable
    assert soko.data_types.Classes is soko.Classes


def test_errors_exports_the_error_classes() -> None:
    declared = {
        name
        for name, value in vars(soko.errors).items()
        if inspect.isclass(value) and issubclass(value, soko.errors.SokoError)
    }
    assert declared == ERROR_CLASSES
    for name in ERROR_CLASSES:
        error = getattr(soko.errors, name)
        assert error.__module__ == "soko.errors", name
        assert issubclass(error, soko.errors.SokoError), name


def test_import_soko_loads_no_optional_dependency() -> None:
    # A fresh interpreter: this one has imported whatever other tests needed.
    code = "import json, sys; import soko; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "soko" in loaded
    heavy = sorted(
        module
        for module in loaded
        if any(module == name or module.startswith(name + ".") for name in MUST_NOT_LOAD)
    )
    assert heavy == []
