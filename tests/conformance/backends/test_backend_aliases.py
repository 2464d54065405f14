"""What ``save()`` persists on every backend (aliases, tags, metadata, description), the
deletion rules."""

from __future__ import annotations

import pytest
from backend_suite import Backend

import soko
from soko.errors import NotFoundError, ValidationError


def test_aliases_are_added_moved_and_removed_through_save(backend: Backend) -> None:
    backend.log("model", {"w.bin": "weights 0"}, aliases=["best"])
    backend.log("model", {"w.bin": "weights 1"})
    api = soko.Api()

    newer = api.artifact("model:v1")
    newer.aliases.extend(["best", "prod"])
    newer.save()
    assert api.artifact("model:best").version == "v1"  # moved from v0
    assert sorted(api.artifact("model:v0").aliases) == []
    assert sorted(api.artifact("model:v1").aliases) == ["best", "latest", "prod"]

    again = api.artifact("model:prod")
    again.aliases.remove("best")
    again.save()
    assert sorted(again.aliases) == ["latest", "prod"]
    with pytest.raises(NotFoundError):
        api.artifact("model:best")
    assert sorted(api.artifact("model:v1").aliases) == ["latest", "prod"]

    with pytest.raises(ValidationError):
        again.aliases = ["v0"]
    older = api.artifact("model:v0")
    older.aliases = ["prod"]
    older.save()
    assert api.artifact("model:prod").version == "v0"
    assert api.artifact("model:latest").version == "v1"


def test_tags_are_logged_saved_and_filtered_on(backend: Backend) -> None:
    backend.log("data", {"a.txt": "a"}, tags=["raw"])
    backend.log("data", {"a.txt": "b"}, tags=["raw", "clean"])
    api = soko.Api()
    assert api.artifact("data:v0").tags == ["raw"]
    assert sorted(api.artifact("data:v1").tags) == ["clean", "raw"]

    first = api.artifact("data:v0")
    first.tags = ["raw", "checked by hand"]
    first.save()
    assert sorted(api.artifact("data:v0").tags) == ["checked by hand", "raw"]
    assert [v.version for v in api.artifacts("dataset", "data", tags=["raw"])] == ["v0", "v1"]
    assert [v.version for v in api.artifacts("dataset", "data", tags=["clean"])] == ["v1"]
    with pytest.raises(ValidationError):
        first.tags = ["a/b"]


def test_metadata_and_description_are_persisted_nan_as_null(backend: Backend) -> None:
    logged = backend.log("model", {"m.txt": "model"}, metadata={"epochs": 3, "loss": float("nan")})
    api = soko.Api()
    assert api.artifact("model:v0").metadata == {"epochs": 3, "loss": None}

    logged.metadata = {"accuracy": 0.9, "nested": {"nan": float("nan"), "list": [1, 2]}}
    logged.description = "the best"
    logged.save()
    read = api.artifact("model:v0")
    assert read.metadata == {"accuracy": 0.9, "nested": {"nan": None, "list": [1, 2]}}
    assert read.description == "the best"


def test_metadata_limits_are_validation_errors(backend: Backend) -> None:
    logged = backend.log("model", {"m.txt": "model"})
    at_limit = {f"k{i}": i for i in range(100)}
    logged.metadata = at_limit
    logged.save()
    assert soko.Api().artifact("model:v0").metadata == at_limit

    for bad in ({f"k{i}": i for i in range(101)}, {"x": float("inf")}, {"x": -float("inf")}):
        with pytest.raises(ValidationError):
            logged.metadata = bad
        with pytest.raises(ValidationError):
            soko.Artifact("other", "model", metadata=bad)
    assert soko.Api().artifact("model:v0").metadata == at_limit


def test_delete_refuses_while_user_aliases_point_at_the_version(backend: Backend) -> None:
    artifact = backend.log("held", {"h.txt": "held"}, aliases=["production"])
    api = soko.Api()

    with pytest.raises(ValidationError, match="production"):
        artifact.delete()
    assert api.artifact("held:production").version == "v0"
    assert api.artifact("held:v0").state == "COMMITTED"

    artifact.delete(delete_aliases=True)
    assert artifact.state == "DELETED"
    for selector in ("v0", "production", "latest"):
        assert not api.artifact_exists(f"held:{selector}")


def test_delete_of_a_version_with_only_latest_needs_no_flag(backend: Backend) -> None:
    artifact = backend.log("plain", {"p.txt": "plain"})
    artifact.delete()
    assert not soko.Api().artifact_exists("plain:v0")
