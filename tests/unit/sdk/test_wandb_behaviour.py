"""What W&B users notice, held on a draft and on a logged artifact of the embedded store:
W&B's exceptions and messages for drafts and finalized artifacts, its TTL states, its
validation of types, metadata and path names, and the lines it prints.

Every backend's share of this is in ``tests/conformance/backends/test_backend_wandb.py``;
the comparison with the `wandb` package itself in ``tests/differential/``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
from concurrent.futures import Future
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest

import soko
from soko.client import connect
from soko.core.digests import Algorithm
from soko.core.manifest import Entry, Manifest
from soko.core.records import VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import (
    ArtifactFinalizedError,
    ArtifactNotLoggedError,
    ArtifactStatusError,
    CommError,
    NotFoundError,
    UsageError,
    ValidationError,
    WaitTimeoutError,
    WrongTypeError,
)

NOT_LOGGED = (
    r"^'Artifact\.{}' used prior to logging artifact or while in offline mode\. "
    r"Call Artifact\.wait\(\) before accessing logged artifact properties\.$"
)
FINALIZED = r"^'Artifact\.{}' used on logged artifact\. Can't modify finalized artifact\.$"


def _draft(tmp_path: Path) -> soko.Artifact:
    (tmp_path / "a.txt").write_text("alpha")
    art = soko.Artifact("data", "dataset")
    art.add_file(str(tmp_path / "a.txt"))
    return art


@pytest.fixture
def logged(soko_env: Any, tmp_path: Path) -> soko.Artifact:
    art = _draft(tmp_path)
    with soko.init(project="p") as run:
        run.log_artifact(art)
    return art


# ----- a draft -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attribute",
    [
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
    ],
)
def test_logged_attributes_of_a_draft_raise_wandbs_error(tmp_path: Path, attribute: str) -> None:
    art = _draft(tmp_path)
    with pytest.raises(ArtifactNotLoggedError, match=NOT_LOGGED.format(attribute)) as caught:
        getattr(art, attribute)
    assert (caught.value.name, caught.value.obj) == (attribute, art)
    # An AttributeError, as in W&B: getattr with a default and hasattr see no attribute.
    assert getattr(art, attribute, "absent") == "absent"
    assert not hasattr(art, attribute)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("files", ()),
        ("file", ()),
        ("download", ()),
        ("checkout", ()),
        ("verify", ()),
        ("json_encode", ()),
        ("logged_by", ()),
        ("used_by", ()),
        ("new_draft", ()),
        ("delete", ()),
        ("wait", ()),
    ],
)
def test_logged_methods_of_a_draft_raise_wandbs_error(
    tmp_path: Path, method: str, args: tuple[Any, ...]
) -> None:
    art = _draft(tmp_path)
    with pytest.raises(ArtifactNotLoggedError, match=NOT_LOGGED.format(method)):
        getattr(art, method)(*args)


def test_what_w_and_b_gives_a_draft(tmp_path: Path) -> None:
    art = _draft(tmp_path)
    assert (art.id, art.state, art.name, art.source_name) == (None, "PENDING", "data", "data")
    assert art.size == 5 and len(art.manifest) == 1 and art.digest
    assert art.is_draft()


def test_a_drafts_ttl_reads_once_set(tmp_path: Path) -> None:
    art = _draft(tmp_path)
    art.ttl = datetime.timedelta(days=3)
    assert art.ttl == datetime.timedelta(days=3)
    art.ttl = None
    assert art.ttl is None
    art.ttl = soko.ArtifactTTL.INHERIT
    with pytest.raises(ArtifactNotLoggedError, match=NOT_LOGGED.format("ttl")):
        _ = art.ttl
    with pytest.raises(ValidationError, match="positive"):
        art.ttl = datetime.timedelta(seconds=-1)


# ----- a logged artifact ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("add_file", lambda a, f: a.add_file(f)),
        ("add_dir", lambda a, f: a.add_dir(str(Path(f).parent))),
        ("add_reference", lambda a, f: a.add_reference(f"file://{f}")),
        ("new_file", lambda a, f: a.new_file("x.txt").__enter__()),
        ("remove", lambda a, f: a.remove("a.txt")),
        ("add", lambda a, f: a.add(soko.Table(columns=["a"], data=[[1]]), "t")),
    ],
)
def test_changing_a_logged_artifact_raises_wandbs_error(
    logged: soko.Artifact, tmp_path: Path, method: str, call: Any
) -> None:
    (tmp_path / "b.txt").write_text("beta")
    with pytest.raises(ArtifactFinalizedError, match=FINALIZED.format(method)) as caught:
        call(logged, str(tmp_path / "b.txt"))
    assert isinstance(caught.value, ArtifactStatusError | AttributeError | ValueError)
    assert logged.file_count == 1


def test_finalize_makes_a_draft_refuse_changes(tmp_path: Path) -> None:
    art = _draft(tmp_path)
    art.finalize()
    with pytest.raises(ArtifactFinalizedError, match=FINALIZED.format("add_file")):
        art.add_file(str(tmp_path / "a.txt"), name="again.txt")


def test_logged_attributes(logged: soko.Artifact) -> None:
    assert logged.file_count == 1
    assert [e.path for e in logged.files()] == ["a.txt"]
    assert (logged.source_entity, logged.source_project) == (logged.entity, "p")
    assert logged.source_qualified_name == f"{logged.entity}/p/data:v0"
    assert logged.history_step is None
    assert logged.ttl is None  # logged without a TTL: nothing inherited in soko
    assert logged.json_encode() == {
        "_type": "artifactVersion",
        "_version": "v0",
        "id": logged.id,
        "version": "v0",
        "sequenceName": "data",
        "usedAs": None,
    }


def test_a_ttl_set_on_a_draft_is_kept(soko_env: Any, tmp_path: Path) -> None:
    art = _draft(tmp_path)
    art.ttl = datetime.timedelta(days=2)
    with soko.init(project="p") as run:
        run.log_artifact(art)
    assert soko.Api().artifact("p/data:v0").ttl == datetime.timedelta(days=2)
    art.ttl = soko.ArtifactTTL.INHERIT
    with pytest.raises(ArtifactNotLoggedError, match=NOT_LOGGED.format("ttl")):
        _ = art.ttl  # W&B: changed to "inherit" and not saved yet
    art.save()
    assert art.ttl is None
    assert soko.Api().artifact("p/data:v0").ttl is None


def test_wait_that_runs_out_raises_wait_timeout(tmp_path: Path) -> None:
    art = _draft(tmp_path)
    art._pending = Future[VersionRecord]()  # a log that never ends
    with pytest.raises(WaitTimeoutError, match="wait timed out") as caught:
        art.wait(timeout=0)
    assert isinstance(caught.value, TimeoutError)


def test_a_finished_run_raises_usage_error(soko_env: Any, tmp_path: Path) -> None:
    run = soko.init(project="p")
    run.finish()
    with pytest.raises(UsageError, match=rf"Run \({run.id}\) is finished"):
        run.log_artifact(_draft(tmp_path))


def test_api_artifact_of_an_over_long_name_is_not_found(soko_env: Any) -> None:
    api = soko.Api()
    with pytest.raises(CommError, match="not found") as caught:
        api.artifact("p/" + "x" * 200 + ":v0")
    assert isinstance(caught.value, NotFoundError)
    assert not api.artifact_exists("p/" + "x" * 200)
    with pytest.raises(ValidationError):
        api.artifact("p/bad name")  # not merely too long: still bad input


def test_api_artifact_of_another_type_is_not_found(logged: soko.Artifact) -> None:
    with pytest.raises(CommError, match="type 'model' specified but this artifact is of type"):
        soko.Api().artifact("p/data:v0", type="model")


# ----- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "type_name"),
    [("x", "job"), ("run-abc-table", "run_table"), ("source-p-x.py", "code"), ("x", "wandb-x")],
)
def test_reserved_types_are_refused(name: str, type_name: str) -> None:
    with pytest.raises(ValueError, match=f"Artifact type '{type_name}' is reserved"):
        soko.Artifact(name, type_name)


@pytest.mark.parametrize(("name", "type_name"), [("table", "run_table"), ("main.py", "code")])
def test_reserved_types_take_other_names(name: str, type_name: str) -> None:
    assert soko.Artifact(name, type_name).type == type_name


def test_versions_of_reserved_types_logged_by_wandb_are_read(soko_env: Any) -> None:
    """The `wandb` package logs run_table and job artifacts of its own (to a soko server):
    the store keeps them and Api() reads them, though Artifact() refuses to make one."""
    backend = connect.get_backend()
    for name, type_name in (("run-abc-table", "run_table"), ("job-x", "job")):
        manifest = Manifest.of([Entry(path="r.txt", digest="uri", ref="foo://r")], Algorithm.MD5)
        backend.commit(
            CommitRequest(entity="local", project="p", name=name, type=type_name, manifest=manifest)
        )
        assert soko.Api().artifact(f"p/{name}:v0").type == type_name


def test_storage_region_is_accepted() -> None:
    assert soko.Artifact("a", "dataset", storage_region="coreweave-us").type == "dataset"


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_metadata_is_converted_as_w_and_b_does() -> None:
    art = soko.Artifact(
        "a",
        "dataset",
        metadata={"s": slice(1, 10, 2), "c": Colour.RED, "p": Point(1, 2), "b": b"hi"},
    )
    assert art.metadata == {
        "s": {"slice_start": 1, "slice_step": 2, "slice_stop": 10},
        "c": "RED",
        "p": {"x": 1, "y": 2},
        "b": "hi",
    }
    assert soko.Artifact("a", "dataset", metadata={"path": Path("x/y")}).metadata == {"path": "x/y"}


@pytest.mark.parametrize("metadata", [[1, 2], 3, "[1, 2]"])
def test_metadata_that_is_not_a_dict_is_a_type_error(metadata: Any) -> None:
    with pytest.raises(TypeError, match="as artifact metadata"):
        soko.Artifact("a", "dataset", metadata=metadata)
    art = soko.Artifact("a", "dataset")
    with pytest.raises(WrongTypeError):
        art.metadata = metadata


def test_metadata_changed_in_place_is_checked_at_log_time(soko_env: Any, tmp_path: Path) -> None:
    art = _draft(tmp_path)
    art.metadata["bad"] = float("inf")
    with soko.init(project="p") as run, pytest.raises(ValidationError, match="infinite"):
        run.log_artifact(art)
    art = _draft(tmp_path)
    art.metadata.update({str(i): i for i in range(101)})
    with soko.init(project="p") as run, pytest.raises(ValidationError, match="100"):
        run.log_artifact(art)
    art = _draft(tmp_path)
    art.metadata["s"] = slice(2)
    with soko.init(project="p") as run:
        run.log_artifact(art)
    assert soko.Api().artifact("p/data:latest").metadata == {
        "s": {"slice_start": None, "slice_step": None, "slice_stop": 2}
    }


def test_windows_path_names_are_read_as_w_and_b_reads_them(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    art = soko.Artifact("a", "dataset")
    entry = art.add_file(str(tmp_path / "a.txt"), name=PureWindowsPath("dir\\sub\\a.txt"))
    assert entry.path == "dir/sub/a.txt"
    assert art.get_entry(PureWindowsPath("dir\\sub\\a.txt")).path == "dir/sub/a.txt"
    with pytest.raises(ValidationError):
        art.add_file(str(tmp_path / "a.txt"), name=PureWindowsPath("C:\\a.txt"))
    with pytest.raises(ValidationError):
        art.add_file(str(tmp_path / "a.txt"), name="..\\a.txt")
    art.remove(PureWindowsPath("dir\\sub"))
    assert len(art.manifest) == 0


# ----- output --------------------------------------------------------------------------


def test_checksum_line_goes_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SOKO_SILENT", raising=False)
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs/x.txt").write_text("x")
    soko.Artifact("a", "dataset").add_reference(f"file://{tmp_path}/refs")
    err = capsys.readouterr().err
    folder = f"{tmp_path}/refs"
    assert err.startswith(f"soko: Generating checksum for up to 10000000 files in {folder!r}")
    assert err.endswith("s\n") and "... Done. " in err


@pytest.mark.parametrize("variable", ["SOKO_SILENT", "WANDB_SILENT"])
def test_silent_sends_the_lines_to_the_logger(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    variable: str,
) -> None:
    monkeypatch.delenv("SOKO_SILENT", raising=False)
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    monkeypatch.setenv(variable, "true")
    with caplog.at_level(logging.INFO, logger="soko"):
        soko.Artifact("a", "dataset").add_reference("foo://bucket/key", name="k")
    assert capsys.readouterr().err == ""
    assert caplog.record_tuples == [
        (
            "soko",
            logging.WARNING,
            "soko: WARNING Artifact references with unsupported schemes cannot be "
            "checksummed: foo://bucket/key",
        )
    ]


def test_new_file_with_the_wrong_encoding_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SOKO_SILENT", raising=False)
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    art = soko.Artifact("a", "dataset")
    with pytest.raises(UnicodeEncodeError), art.new_file("x.txt", encoding="ascii") as f:
        f.write("é")
    assert "soko: ERROR Failed to open the provided file (UnicodeEncodeError: " in (
        capsys.readouterr().err
    )
