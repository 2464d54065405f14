"""The error tree: every class has its own stable code, and the code maps back to it."""

from __future__ import annotations

import pytest

import soko.errors as errors_module
from soko.errors import SokoError, error_for_code


def _declared_error_classes() -> list[type[SokoError]]:
    """Every SokoError subclass defined in soko.errors (found by name, not by walking)."""
    return [
        value
        for value in vars(errors_module).values()
        if isinstance(value, type) and issubclass(value, SokoError)
    ]


def _all_subclasses(cls: type[SokoError]) -> list[type[SokoError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(c for c in _all_subclasses(sub) if c not in found)
    return found


def test_the_module_declares_a_tree() -> None:
    declared = _declared_error_classes()
    assert len(declared) >= 10
    assert SokoError in declared


def test_every_class_declares_its_own_code() -> None:
    for cls in _declared_error_classes():
        assert "code" in vars(cls), f"{cls.__name__} inherits its code from a parent"
        assert isinstance(cls.code, str) and cls.code


def test_codes_are_distinct() -> None:
    classes = _all_subclasses(SokoError)
    codes = [cls.code for cls in classes]
    duplicates = {code for code in codes if codes.count(code) > 1}
    assert not duplicates, duplicates


@pytest.mark.parametrize("cls", _declared_error_classes(), ids=lambda c: c.__name__)
def test_error_for_code_maps_back(cls: type[SokoError]) -> None:
    assert error_for_code(cls.code) is cls


def test_unknown_code_maps_to_the_root() -> None:
    assert error_for_code("no_such_code") is SokoError
    assert error_for_code("") is SokoError


@pytest.mark.parametrize("cls", _declared_error_classes(), ids=lambda c: c.__name__)
def test_names_end_in_error_and_have_docstrings(cls: type[SokoError]) -> None:
    assert cls.__name__.endswith("Error")
    assert cls.__doc__ and cls.__doc__.strip()


def test_http_status_is_an_error_status() -> None:
    for cls in _declared_error_classes():
        assert 400 <= cls.http_status <= 599, cls


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("ValidationError", ValueError),
        ("ArtifactFinalizedError", ValueError),
        ("NotFoundError", LookupError),
        ("StoreError", OSError),
        ("PermissionDeniedError", PermissionError),
        ("ArtifactNotLoggedError", AttributeError),
        ("ArtifactFinalizedError", AttributeError),
        ("MissingReferenceError", FileNotFoundError),
        ("NotFoundError", ValueError),
        ("WaitTimeoutError", TimeoutError),
        ("ServerUnavailableError", OSError),
    ],
)
def test_builtins_a_caller_would_catch(name: str, builtin: type[BaseException]) -> None:
    cls = getattr(errors_module, name)
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("boom")


@pytest.mark.parametrize(
    ("name", "wandb_parent"),
    [
        ("SokoError", "Error"),
        ("NotFoundError", "CommError"),
        ("AuthenticationError", "CommError"),
        ("PermissionDeniedError", "CommError"),
        ("ServerUnavailableError", "CommError"),
        ("MissingReferenceError", "CommError"),
        ("UnsupportedError", "UsageError"),
        ("ArtifactNotLoggedError", "ArtifactStatusError"),
        ("ArtifactFinalizedError", "ArtifactStatusError"),
        ("WaitTimeoutError", "Error"),
    ],
)
def test_wandb_names_catch_soko_errors(name: str, wandb_parent: str) -> None:
    cls = getattr(errors_module, name)
    with pytest.raises(getattr(errors_module, wandb_parent)):
        raise cls("boom")


def test_old_names_still_catch() -> None:
    """The W&B names sit inside soko's tree: code catching soko's classes is unchanged."""
    assert issubclass(errors_module.UsageError, errors_module.ValidationError)
    assert issubclass(errors_module.ArtifactNotLoggedError, errors_module.ValidationError)
    assert issubclass(errors_module.MissingReferenceError, errors_module.NotFoundError)
    assert issubclass(errors_module.ServerUnavailableError, errors_module.StoreError)
    assert errors_module.Error is SokoError


class Artifact:
    def wait(self) -> None:
        pass


def test_status_errors_are_built_as_wandb_builds_them() -> None:
    artifact = Artifact()
    not_logged = errors_module.ArtifactNotLoggedError("Artifact.file_count", artifact)
    assert str(not_logged) == (
        "'Artifact.file_count' used prior to logging artifact or while in offline mode. "
        "Call Artifact.wait() before accessing logged artifact properties."
    )
    assert (not_logged.name, not_logged.obj) == ("file_count", artifact)
    finalized = errors_module.ArtifactFinalizedError("Artifact.add_file", artifact)
    assert str(finalized) == (
        "'Artifact.add_file' used on logged artifact. Can't modify finalized artifact."
    )
    assert finalized.name == "add_file"


@pytest.mark.parametrize("cls", _declared_error_classes(), ids=lambda c: c.__name__)
def test_a_message_alone_makes_every_class(cls: type[SokoError]) -> None:
    """What the HTTP client does with a server's error body: code -> class, message."""
    error = error_for_code(cls.code)("the message")
    assert type(error) is cls
    assert str(error) == "the message" == error.message
    assert error.context == {}


def test_comm_error_keeps_its_cause() -> None:
    cause = ConnectionError("refused")
    assert errors_module.CommError("no answer", cause).exc is cause
