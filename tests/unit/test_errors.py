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
        found.extend(_all_subclasses(sub))
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
    ],
)
def test_builtins_a_caller_would_catch(name: str, builtin: type[BaseException]) -> None:
    cls = getattr(errors_module, name)
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("boom")
