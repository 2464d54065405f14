"""The same mistakes made with the `wandb` package (offline) and with soko: the same
exception classes (by name and by the builtins they are), the same messages, the same
validation of names, types, metadata and path names.

soko's classes are W&B's names inside soko's own tree (``docs/migrating-from-wandb.md``):
each is checked to be everything W&B's class of that name is, so ``except`` clauses written
for W&B catch it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import math
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest
import wandb
import wandb.errors
from wandb.sdk.artifacts import exceptions as wandb_exceptions
from wandb.sdk.artifacts.artifact_ttl import ArtifactTTL as WandbTTL

import soko
import soko.errors
from soko.sdk.artifacts import exceptions as soko_exceptions
from soko.sdk.artifacts.artifact_ttl import ArtifactTTL

# W&B's exception classes a user can meet (its internal TooFew/TooManyItemsError and the
# wandb-core one excepted).
WANDB_CLASSES = {
    **{
        name: getattr(wandb.errors, name)
        for name in wandb.errors.__all__
        if name != "WandbCoreNotAvailableError"
    },
    **{
        name: value
        for name, value in vars(wandb_exceptions).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == wandb_exceptions.__name__
        and name not in ("TooFewItemsError", "TooManyItemsError")
    },
}
BUILTINS = [
    AttributeError,
    ValueError,
    TypeError,
    LookupError,
    OSError,
    FileNotFoundError,
    PermissionError,
    TimeoutError,
]


def test_every_wandb_exception_name_is_in_soko_errors() -> None:
    assert sorted(WANDB_CLASSES) == sorted(
        n for n in WANDB_CLASSES if isinstance(getattr(soko.errors, n, None), type)
    )
    assert {"ArtifactNotLoggedError", "CommError", "UsageError", "WaitTimeoutError"} <= set(
        WANDB_CLASSES
    )


@pytest.mark.parametrize("name", sorted(WANDB_CLASSES))
def test_soko_classes_are_what_wandbs_are(name: str) -> None:
    wandb_cls, soko_cls = WANDB_CLASSES[name], getattr(soko.errors, name)
    for other_name, other in WANDB_CLASSES.items():
        if issubclass(wandb_cls, other):
            assert issubclass(soko_cls, getattr(soko.errors, other_name)), other_name
    for builtin in BUILTINS:
        if issubclass(wandb_cls, builtin):
            assert issubclass(soko_cls, builtin), builtin


def test_the_module_paths_of_wandb() -> None:
    for name in ("ArtifactNotLoggedError", "ArtifactFinalizedError", "WaitTimeoutError"):
        assert getattr(soko_exceptions, name) is getattr(soko.errors, name)
    assert [m.name for m in ArtifactTTL] == [m.name for m in WandbTTL]
    assert ArtifactTTL.INHERIT.value == WandbTTL.INHERIT.value
    assert soko.ArtifactTTL is ArtifactTTL
    for name in ("Error", "CommError", "UsageError"):
        assert getattr(soko, name) is getattr(soko.errors, name)
        assert hasattr(wandb, name)


def _error(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


def _draft(module: Any, tmp_path: Path) -> Any:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "a.txt").write_text("alpha")
    artifact = module.Artifact("data", "dataset")
    artifact.add_file(str(tmp_path / "a.txt"))
    return artifact


DRAFT_READS = [
    "file_count",
    "ttl",
    "version",
    "entity",
    "project",
    "source_entity",
    "source_project",
    "source_version",
    "commit_hash",
    "created_at",
    "updated_at",
    "history_step",
]
DRAFT_CALLS = ["files", "file", "download", "checkout", "verify", "json_encode", "new_draft"]
DRAFT_CALLS += ["logged_by", "used_by", "delete", "wait"]


@pytest.mark.parametrize("what", DRAFT_READS + DRAFT_CALLS)
def test_a_draft_refuses_what_wandb_refuses_with_its_words(tmp_path: Path, what: str) -> None:
    def use(artifact: Any) -> Callable[[], Any]:
        if what in DRAFT_CALLS:
            return lambda: getattr(artifact, what)()
        return lambda: getattr(artifact, what)

    expected = _error(use(_draft(wandb, tmp_path / "w")))
    actual = _error(use(_draft(soko, tmp_path / "s")))
    assert type(expected).__name__ == type(actual).__name__ == "ArtifactNotLoggedError"
    assert str(actual) == str(expected)
    assert actual.name == expected.name  # type: ignore[attr-defined]


@pytest.mark.parametrize("what", ["id", "state", "name", "source_name", "size", "digest"])
def test_a_draft_answers_what_wandb_answers(tmp_path: Path, what: str) -> None:
    w, s = _draft(wandb, tmp_path / "w"), _draft(soko, tmp_path / "s")
    if what == "digest":  # soko's default algorithm is XXH128; W&B's MD5
        s = soko.Artifact("data", "dataset", digest_algorithm="MD5")
        s.add_file(str(tmp_path / "s/a.txt"))
    assert getattr(s, what) == getattr(w, what)


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("add_file", lambda a, f: a.add_file(f)),
        ("add_dir", lambda a, f: a.add_dir(str(Path(f).parent))),
        ("add_reference", lambda a, f: a.add_reference(f"file://{f}")),
        ("remove", lambda a, f: a.remove("a.txt")),
        ("new_file", lambda a, f: a.new_file("n.txt").__enter__()),
    ],
)
def test_a_finalized_artifact_refuses_with_wandbs_words(
    tmp_path: Path, method: str, call: Callable[[Any, str], Any]
) -> None:
    errors = []
    for module, folder in ((wandb, tmp_path / "w"), (soko, tmp_path / "s")):
        artifact = _draft(module, folder)
        artifact.finalize()
        errors.append(_error(lambda a=artifact, f=str(folder / "a.txt"): call(a, f)))
    expected, actual = errors
    assert type(expected).__name__ == type(actual).__name__ == "ArtifactFinalizedError"
    assert str(actual) == str(expected)
    assert isinstance(actual, soko.errors.ArtifactFinalizedError)


def test_ttl_states_are_wandbs(tmp_path: Path) -> None:
    for module, ttl_enum in ((wandb, WandbTTL), (soko, ArtifactTTL)):
        artifact = module.Artifact("data", "dataset")
        artifact.ttl = datetime.timedelta(days=2)
        assert artifact.ttl == datetime.timedelta(days=2)
        artifact.ttl = None
        assert artifact.ttl is None
        artifact.ttl = ttl_enum.INHERIT
        assert type(_error(lambda a=artifact: a.ttl)).__name__ == "ArtifactNotLoggedError"
        negative = _error(lambda a=artifact: setattr(a, "ttl", datetime.timedelta(0)))
        assert isinstance(negative, ValueError)


NAMES_AND_TYPES = [
    ("data", "dataset"),
    ("x" * 128, "dataset"),
    ("x" * 129, "dataset"),
    ("a/b", "dataset"),
    ("a b", "dataset"),
    ("a:b", "dataset"),
    ("x" * 200 + " ", "dataset"),
    ("", "dataset"),
    ("data", "job"),
    ("data", "wandb-history"),
    ("run-abc-table", "run_table"),
    ("table", "run_table"),
    ("source-p-main.py", "code"),
    ("main.py", "code"),
]
# Not compared: a type holding "/" or ":", which W&B's Artifact() takes and soko refuses
# (soko's rule; docs/migrating-from-wandb.md).


@pytest.mark.parametrize(("name", "type_name"), NAMES_AND_TYPES)
def test_names_and_types_are_refused_as_wandb_refuses_them(name: str, type_name: str) -> None:
    def make(module: Any) -> BaseException | None:
        try:
            module.Artifact(name, type_name)
        except ValueError as exc:
            return exc
        return None

    expected, actual = make(wandb), make(soko)
    assert (actual is None) == (expected is None), (expected, actual)
    if expected is not None:
        assert str(actual) == str(expected)


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: list[int]


METADATA = [
    {"plain": 1, "text": "a", "none": None, "list": [1, "b", [2.5]], "nested": {"k": True}},
    {"nan": math.nan, "deep": {"n": [math.nan]}},
    {"slice": slice(1, 10, 2), "open": slice(3)},
    {"enum": Colour.RED, "dataclass": Point(1, [2, 3]), "bytes": b"hi"},
    {"path": Path("x/y"), "pure": PurePosixPath("a/b"), "function": len},
    {"date": datetime.date(2024, 1, 2), "time": datetime.datetime(2024, 1, 2, 3, 4, 5)},
    {"tuple": (1, 2), "set": {7}},
    {str(i): i for i in range(100)},
    '{"from": "json", "n": [1, 2]}',
    None,
]


@pytest.mark.parametrize("metadata", METADATA, ids=range(len(METADATA)))
def test_metadata_is_converted_as_wandb_converts_it(metadata: Any) -> None:
    expected = wandb.Artifact("a", "dataset", metadata=metadata).metadata
    assert soko.Artifact("a", "dataset", metadata=metadata).metadata == expected


BAD_METADATA = [[1, 2], 3, "[1, 2]", "3", {"inf": math.inf}, {str(i): i for i in range(101)}]


@pytest.mark.parametrize("metadata", BAD_METADATA, ids=range(len(BAD_METADATA)))
def test_bad_metadata_raises_what_wandb_raises(metadata: Any) -> None:
    expected = _error(lambda: wandb.Artifact("a", "dataset", metadata=metadata))
    actual = _error(lambda: soko.Artifact("a", "dataset", metadata=metadata))
    assert isinstance(actual, type(expected)), (expected, actual)
    if isinstance(expected, TypeError):
        assert str(actual) == str(expected)


PATH_NAMES: list[Any] = [
    "a.txt",
    "d/a.txt",
    "./d/a.txt",
    PureWindowsPath("d\\e\\a.txt"),
    PurePosixPath("d/e/a.txt"),
    Path("d/a.txt"),
    "..\\a.txt",
    "d\\..\\..\\a.txt",
    "../a.txt",
    "/abs.txt",
    PureWindowsPath("C:\\a.txt"),
    "C:\\a.txt",
]


@pytest.mark.parametrize("name", PATH_NAMES, ids=[repr(n) for n in PATH_NAMES])
def test_add_file_names_are_read_as_wandb_reads_them(tmp_path: Path, name: Any) -> None:
    (tmp_path / "a.txt").write_text("alpha")

    def add(module: Any) -> str | None:
        artifact = module.Artifact("a", "dataset")
        try:
            return str(artifact.add_file(str(tmp_path / "a.txt"), name=name).path)
        except ValueError:
            return None

    assert add(soko) == add(wandb)
