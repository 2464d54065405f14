"""Editing a draft artifact: what it records, and that bad input changes nothing."""

from __future__ import annotations

import base64
import errno
import hashlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import xxhash

import soko
from soko.errors import ArtifactFinalizedError, ValidationError

TreeFactory = Callable[..., Path]  # the make_tree fixture of tests/conftest.py


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def xxh_b64(data: bytes) -> str:
    return base64.b64encode(xxhash.xxh128(data).digest()).decode()


def state(art: soko.Artifact) -> tuple[Any, ...]:
    """Everything a failed call must leave as it was."""
    return (
        art.manifest.to_bytes(),
        art.digest,
        art.size,
        repr(art.metadata),
        list(art.aliases),
        list(art.tags),
        art.description,
        # An ArtifactNotLoggedError (an AttributeError) on a draft whose TTL was never set.
        getattr(art, "ttl", "inherited"),
    )


@pytest.fixture
def art() -> soko.Artifact:
    return soko.Artifact("data", "dataset", digest_algorithm="MD5")


@pytest.fixture
def filled(art: soko.Artifact, make_tree: TreeFactory) -> soko.Artifact:
    root = make_tree({"a.txt": "alpha", "d/b.txt": "beta", "d/e/c.txt": "gamma"})
    art.add_dir(root)
    return art


# ----- construction -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "sp ace", "x" * 129, "tab\t"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        soko.Artifact(name, "dataset")


@pytest.mark.parametrize("type_name", ["", "a/b", "a:b", "wandb-history", "job"])
def test_bad_types_are_refused(type_name: str) -> None:
    with pytest.raises(ValidationError):
        soko.Artifact("name", type_name)


@pytest.mark.parametrize(
    "metadata", [{"x": math.inf}, {str(i): i for i in range(101)}, {"o": object()}]
)
def test_bad_metadata_is_refused(metadata: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        soko.Artifact("name", "dataset", metadata=metadata)


def test_unknown_digest_algorithm_is_refused() -> None:
    with pytest.raises(ValidationError, match="digest algorithm"):
        soko.Artifact("name", "dataset", digest_algorithm="SHA1")


def test_unused_wandb_keywords_are_accepted() -> None:
    art = soko.Artifact("name", "dataset", storage_region="us", some_future_flag=True)
    assert art.name == "name" and art.type == "dataset" and art.is_draft()


def test_metadata_is_cleaned_and_copied() -> None:
    given: dict[str, Any] = {"loss": math.nan, "nested": {"k": [1, 2]}}
    art = soko.Artifact("name", "dataset", metadata=given)
    given["nested"]["k"].append(3)
    assert art.metadata == {"loss": None, "nested": {"k": [1, 2]}}


# ----- settable attributes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("aliases", ["ok", "v3"]),
        ("aliases", ["a/b"]),
        ("aliases", ["a:b"]),
        ("tags", ["fine", "not/fine"]),
        ("metadata", {"x": -math.inf}),
        ("metadata", [1, 2]),
        ("description", 5),
        ("ttl", -1),
        ("ttl", "one day"),
    ],
)
def test_bad_settable_values_change_nothing(
    filled: soko.Artifact, attribute: str, value: Any
) -> None:
    filled.aliases = ["best"]
    filled.tags = ["tagged"]
    filled.metadata = {"k": 1}
    filled.description = "kept"
    before = state(filled)
    with pytest.raises(ValidationError):
        setattr(filled, attribute, value)
    assert state(filled) == before


def test_good_settable_values(art: soko.Artifact) -> None:
    import datetime

    art.aliases = ["best", "prod", "best"]
    art.tags = ["a b", "c"]
    art.metadata = {"n": math.nan}
    art.ttl = datetime.timedelta(days=2)
    assert art.aliases == ["best", "prod"]
    assert art.tags == ["a b", "c"]
    assert art.metadata == {"n": None}
    assert art.ttl == datetime.timedelta(days=2)


# ----- add_file -----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "XXH128"])
def test_add_file_records_digest_size_and_local_path(tmp_path: Path, algorithm: str) -> None:
    art = soko.Artifact("data", "dataset", digest_algorithm=algorithm)
    local = tmp_path / "f.bin"
    local.write_bytes(b"hello")
    entry = art.add_file(str(local))
    expected = md5_b64(b"hello") if algorithm == "MD5" else xxh_b64(b"hello")
    assert (entry.path, entry.digest, entry.size) == ("f.bin", expected, 5)
    assert entry.extra == ({} if algorithm == "MD5" else {"alg": "XXH128"})
    assert entry.local_path == str(local)
    assert art.get_entry("f.bin") == entry
    assert art.get_entry("f.bin").local_path == str(local)
    assert art.size == 5


def test_default_algorithm_is_xxh128(tmp_path: Path) -> None:
    local = tmp_path / "f"
    local.write_bytes(b"x")
    art = soko.Artifact("data", "dataset")
    assert art.digest_algorithm == "XXH128"
    assert art.add_file(str(local)).digest == xxh_b64(b"x")


def test_the_setting_makes_md5_the_default(
    soko_env: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "f"
    local.write_bytes(b"x")
    monkeypatch.setenv("SOKO_DIGEST_ALGORITHM", "md5")
    art = soko.Artifact("data", "dataset")
    assert art.digest_algorithm == "MD5"
    entry = art.add_file(str(local))
    assert (entry.digest, entry.extra) == (md5_b64(b"x"), {})
    # Asked for by name, an algorithm wins over the setting.
    assert soko.Artifact("data", "dataset", digest_algorithm="XXH128").digest_algorithm == "XXH128"
    # The run's shortcut (an artifact made from a path) follows the setting too.
    with soko.init(project="p", dir=str(tmp_path)) as run:
        logged = run.log_artifact(str(local), name="from-path", type="dataset")
        logged.wait()
    assert logged.digest_algorithm == "MD5"
    assert logged.get_entry("f").digest == md5_b64(b"x")


def test_an_unknown_digest_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOKO_DIGEST_ALGORITHM", "sha1")
    with pytest.raises(ValidationError, match="SOKO_DIGEST_ALGORITHM must be one of"):
        soko.Artifact("data", "dataset")
    assert soko.Artifact("data", "dataset", digest_algorithm="MD5").digest_algorithm == "MD5"


def test_add_file_accepts_pathlike_and_name(art: soko.Artifact, tmp_path: Path) -> None:
    local = tmp_path / "f.txt"
    local.write_text("x")
    entry = art.add_file(local, name="sub/dir/g.txt")
    assert entry.path == "sub/dir/g.txt"
    assert [e.path for e in art.manifest] == ["sub/dir/g.txt"]


@pytest.mark.parametrize(
    "name", ["/abs.txt", "../up.txt", "a/../../up.txt", "a//b", "C:\\x", "a\x00b", "a/.."]
)
def test_add_file_with_bad_name_changes_nothing(
    filled: soko.Artifact, tmp_path: Path, name: str
) -> None:
    local = tmp_path / "f.txt"
    local.write_text("x")
    before = state(filled)
    with pytest.raises(ValidationError, match="Invalid artifact path"):
        filled.add_file(str(local), name=name)
    assert state(filled) == before


def test_add_file_missing_or_directory_changes_nothing(
    filled: soko.Artifact, tmp_path: Path
) -> None:
    before = state(filled)
    with pytest.raises(ValidationError, match="not a file"):
        filled.add_file(str(tmp_path / "missing.txt"))
    with pytest.raises(ValidationError, match="not a file"):
        filled.add_file(str(tmp_path))
    assert state(filled) == before


def test_add_file_bad_policy_changes_nothing(filled: soko.Artifact, tmp_path: Path) -> None:
    local = tmp_path / "f.txt"
    local.write_text("x")
    before = state(filled)
    with pytest.raises(ValidationError, match="policy"):
        filled.add_file(str(local), policy="frozen")
    assert state(filled) == before
    filled.add_file(str(local), policy="immutable")
    assert "f.txt" in filled.manifest.entries


def test_same_path_twice_with_other_content(art: soko.Artifact, tmp_path: Path) -> None:
    one, two, same = tmp_path / "one", tmp_path / "two", tmp_path / "same"
    one.write_text("first")
    two.write_text("second")
    same.write_text("first")
    art.add_file(str(one), name="x.txt")
    before = state(art)
    with pytest.raises(ValidationError, match="overwrite=True"):
        art.add_file(str(two), name="x.txt")
    assert state(art) == before
    # The same content under the same path is not a conflict.
    art.add_file(str(same), name="x.txt")
    assert art.get_entry("x.txt").digest == md5_b64(b"first")
    replaced = art.add_file(str(two), name="x.txt", overwrite=True)
    assert replaced.digest == md5_b64(b"second")
    assert art.get_entry("x.txt").digest == md5_b64(b"second")
    assert art.get_entry("x.txt").local_path == str(two)


def test_is_tmp_renames_by_digest(art: soko.Artifact, tmp_path: Path) -> None:
    local = tmp_path / "table.table.json"
    local.write_text("{}")
    entry = art.add_file(str(local), name="media/t.table.json", is_tmp=True)
    hex_id = hashlib.md5(b"{}").hexdigest()[:20]
    assert entry.path == f"media/{hex_id}.table.json"
    bare = art.add_file(str(local), name="plain", is_tmp=True)
    assert bare.path == hex_id


# ----- add_dir ------------------------------------------------------------------------


def test_add_dir_names_entries_by_relative_path(art: soko.Artifact, make_tree: TreeFactory) -> None:
    files = {"a.txt": "A", "empty": b"", "d/é ü/名前.bin": b"\x00\x01", "d/e/f/g": "deep"}
    root = make_tree(files)
    art.add_dir(str(root), name="pre/fix")
    expected = {
        f"pre/fix/{p}": (md5_b64(c if isinstance(c, bytes) else c.encode()))
        for p, c in files.items()
    }
    assert {e.path: e.digest for e in art.manifest} == expected
    assert art.get_entry("pre/fix/empty").size == 0
    assert art.get_entry("pre/fix/d/e/f/g").local_path == os.path.join(root, "d", "e", "f", "g")


def test_add_dir_conflict_adds_none_of_the_dir(art: soko.Artifact, make_tree: TreeFactory) -> None:
    first = make_tree({"x.txt": "old", "keep.txt": "k"})
    art.add_dir(str(first))
    before = state(art)
    second = make_tree({"a.txt": "new a", "x.txt": "new", "z/z.txt": "zz"})
    with pytest.raises(ValidationError, match=r"x\.txt"):
        art.add_dir(str(second))
    assert state(art) == before
    assert art.get_added_local_path_name(str(second / "a.txt")) is None
    art.add_dir(str(second), merge=True)
    assert sorted(e.path for e in art.manifest) == ["a.txt", "keep.txt", "x.txt", "z/z.txt"]
    assert art.get_entry("x.txt").digest == md5_b64(b"new")


@pytest.mark.parametrize("name", ["/abs", "../up", "a//b"])
def test_add_dir_with_bad_name_changes_nothing(
    filled: soko.Artifact, make_tree: TreeFactory, name: str
) -> None:
    root = make_tree({"f": "x"})
    before = state(filled)
    with pytest.raises(ValidationError):
        filled.add_dir(str(root), name=name)
    assert state(filled) == before


@pytest.mark.parametrize(
    ("bad", "refused"), [("d1/..\\up", "leaves the artifact"), ("C:drive", "is absolute")]
)
def test_add_dir_refuses_a_file_whose_name_is_no_artifact_path(
    filled: soko.Artifact, make_tree: TreeFactory, bad: str, refused: str
) -> None:
    files = {f"d{i}/f{j}": "x" for i in range(3) for j in range(40)}
    root = make_tree({**files, "d1/a:b": "colon", "d2/b\\c": "backslash", "ef:g": "colon"})
    (root / bad).write_text("bad")
    before = state(filled)
    with pytest.raises(ValidationError, match=refused):
        filled.add_dir(str(root))
    assert state(filled) == before
    # Below a name, a drive is no drive.
    if bad == "C:drive":
        filled.add_dir(str(root), name="pre")
        assert filled.get_entry("pre/C:drive").digest == md5_b64(b"bad")
    (root / bad).unlink()
    filled.add_dir(str(root))
    assert {"d1/a:b", "d2/b\\c", "ef:g", "d0/f0", "d2/f39"} <= {e.path for e in filled.manifest}


def test_add_dir_of_missing_dir_changes_nothing(filled: soko.Artifact, tmp_path: Path) -> None:
    before = state(filled)
    with pytest.raises(ValidationError, match="not a directory"):
        filled.add_dir(str(tmp_path / "nope"))
    assert state(filled) == before


def test_add_dir_over_a_link_loop_names_the_link_and_changes_nothing(
    filled: soko.Artifact, make_tree: TreeFactory
) -> None:
    root = make_tree({"x.txt": "X", "sub/y.txt": "Y"})
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    before = state(filled)
    with pytest.raises(ValidationError, match=r"sub/up.*link loop"):
        filled.add_dir(str(root))
    assert state(filled) == before


def test_add_dir_over_links_leading_to_each_other_names_them(
    filled: soko.Artifact, make_tree: TreeFactory
) -> None:
    root = make_tree({"x.txt": "X"})
    (root / "one").symlink_to("two")
    (root / "two").symlink_to("one")
    before = state(filled)
    with pytest.raises(ValidationError, match=r"/(one|two)'.*leads back to itself"):
        filled.add_dir(str(root))
    assert state(filled) == before


def test_add_dir_over_a_dangling_link_names_it(
    filled: soko.Artifact, make_tree: TreeFactory
) -> None:
    root = make_tree({"x.txt": "X"})
    (root / "latest.ckpt").symlink_to("gone.ckpt")
    before = state(filled)
    with pytest.raises(ValidationError, match=r"latest\.ckpt'.*'gone\.ckpt', which does not exist"):
        filled.add_dir(str(root))
    assert state(filled) == before


def test_add_dir_follows_links_to_files_and_folders_as_wandb_does(
    art: soko.Artifact, make_tree: TreeFactory
) -> None:
    root = make_tree({"real/b.txt": "B", "a.txt": "A"})
    (root / "alias").symlink_to("real", target_is_directory=True)
    (root / "a-link.txt").symlink_to("a.txt")
    art.add_dir(str(root))
    assert {e.path: e.digest for e in art.manifest} == {
        "a.txt": md5_b64(b"A"),
        "a-link.txt": md5_b64(b"A"),
        "alias/b.txt": md5_b64(b"B"),
        "real/b.txt": md5_b64(b"B"),
    }


def _unreadable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make *path* refuse to open with EACCES, as ``chmod 000`` would for anyone but root
    (these tests may run as root)."""
    real_open = os.open
    target = os.fspath(path)

    def refusing_open(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(file) == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), file)
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)


@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_an_unreadable_file_is_named_at_add_time(
    filled: soko.Artifact,
    make_tree: TreeFactory,
    monkeypatch: pytest.MonkeyPatch,
    policy: str,
) -> None:
    root = make_tree({"x.txt": "X", "d/secret.txt": "S" * 5000})
    secret = root / "d" / "secret.txt"
    _unreadable(monkeypatch, secret)
    before = state(filled)
    with pytest.raises(ValidationError, match=r"secret\.txt'.*Permission denied"):
        filled.add_dir(str(root), policy=policy)
    with pytest.raises(ValidationError, match=r"secret\.txt'.*Permission denied"):
        filled.add_file(str(secret), policy=policy)
    assert state(filled) == before


def test_a_name_segment_longer_than_255_bytes_is_refused_by_every_add(
    filled: soko.Artifact, make_tree: TreeFactory, tmp_path: Path
) -> None:
    root = make_tree({"f.txt": "x"})
    long_name = "d/" + "é" * 128  # 128 characters, 256 bytes
    before = state(filled)
    with pytest.raises(ValidationError, match="256 bytes"):
        filled.add_file(str(root / "f.txt"), name=long_name)
    with pytest.raises(ValidationError, match="256 bytes"):
        filled.add_dir(str(root), name=long_name)
    with pytest.raises(ValidationError, match="256 bytes"):
        filled.add_reference(f"file://{root / 'f.txt'}", name=long_name)
    with pytest.raises(ValidationError, match="256 bytes"), filled.new_file(long_name) as handle:
        handle.write("x")
    assert state(filled) == before
    filled.add_file(str(root / "f.txt"), name="d/" + "é" * 127)  # 254 bytes: a file name


# ----- references ---------------------------------------------------------------------


def test_file_reference_with_and_without_checksum(art: soko.Artifact, tmp_path: Path) -> None:
    local = tmp_path / "ref.txt"
    local.write_text("hello")
    uri = local.resolve().as_uri()
    (with_sum,) = art.add_reference(uri)
    (without,) = art.add_reference(uri, name="nosum", checksum=False)
    assert (with_sum.path, with_sum.digest, with_sum.size, with_sum.ref) == (
        "ref.txt",
        md5_b64(b"hello"),
        5,
        uri,
    )
    assert without.digest == md5_b64(uri.encode())
    assert art.manifest.blob_digests() == set()


def test_reference_conflict_changes_nothing(art: soko.Artifact, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("1")
    two.write_text("2")
    art.add_reference(one.as_uri(), name="r")
    before = state(art)
    with pytest.raises(ValidationError):
        art.add_reference(two.as_uri(), name="r")
    assert state(art) == before


def test_reference_to_missing_file_changes_nothing(filled: soko.Artifact, tmp_path: Path) -> None:
    before = state(filled)
    with pytest.raises(ValidationError):
        filled.add_reference((tmp_path / "missing").as_uri())
    with pytest.raises(ValidationError, match="URI"):
        filled.add_reference("relative/path")
    assert state(filled) == before


def test_unknown_scheme_is_tracked_by_uri(art: soko.Artifact) -> None:
    (entry,) = art.add_reference("ftp://host/x", name="x")
    assert (entry.digest, entry.ref, entry.size) == ("ftp://host/x", "ftp://host/x", None)
    before = state(art)
    with pytest.raises(ValidationError, match="name="):
        art.add_reference("ftp://host/y")
    assert state(art) == before


# ----- new_file -----------------------------------------------------------------------


def test_new_file_adds_the_closed_file(art: soko.Artifact) -> None:
    with art.new_file("notes/readme.md") as handle:
        handle.write("# hi")
    entry = art.get_entry("notes/readme.md")
    assert (entry.digest, entry.size) == (md5_b64(b"# hi"), 4)
    assert entry.local_path is not None and Path(entry.local_path).read_text() == "# hi"
    with art.new_file("bytes.bin", mode="xb") as handle:
        handle.write(b"\x00\xff")
    assert art.get_entry("bytes.bin").digest == md5_b64(b"\x00\xff")


def test_new_file_twice_with_x_is_refused_and_w_overwrites(art: soko.Artifact) -> None:
    with art.new_file("a.txt") as handle:
        handle.write("one")
    before = state(art)
    with pytest.raises(ValidationError, match="already exists"), art.new_file("a.txt") as handle:
        handle.write("two")
    assert state(art) == before
    with art.new_file("a.txt", mode="w") as handle:
        handle.write("two")
    assert art.get_entry("a.txt").digest == md5_b64(b"two")


@pytest.mark.parametrize("name", ["/abs", "../up", "a//b"])
def test_new_file_with_bad_name_changes_nothing(filled: soko.Artifact, name: str) -> None:
    before = state(filled)
    with pytest.raises(ValidationError), filled.new_file(name) as handle:
        handle.write("x")
    assert state(filled) == before


def test_new_file_block_that_raises_adds_nothing(filled: soko.Artifact) -> None:
    before = state(filled)
    with pytest.raises(RuntimeError), filled.new_file("partial.txt") as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert state(filled) == before


# ----- remove, get_entry, get_added_local_path_name ------------------------------------


def test_remove_entry_folder_and_missing(filled: soko.Artifact) -> None:
    filled.remove("d/e")
    assert sorted(e.path for e in filled.manifest) == ["a.txt", "d/b.txt"]
    filled.remove(filled.get_entry("a.txt"))
    assert [e.path for e in filled.manifest] == ["d/b.txt"]
    before = state(filled)
    for missing in ("nope", "d/b", "a.txt", ""):
        with pytest.raises(FileNotFoundError):
            filled.remove(missing)
    assert state(filled) == before
    filled.remove("d/")
    assert len(filled.manifest) == 0


def test_get_entry_of_missing_path_raises_key_error(filled: soko.Artifact) -> None:
    with pytest.raises(KeyError):
        filled.get_entry("missing.txt")
    with pytest.raises(KeyError):
        filled.get_entry("d")
    assert filled.get_entry("d/e/c.txt").digest == md5_b64(b"gamma")


def test_get_added_local_path_name(art: soko.Artifact, make_tree: TreeFactory) -> None:
    root = make_tree({"a.txt": "a", "sub/b.txt": "b"})
    art.add_dir(str(root), name="data")
    art.add_file(str(root / "a.txt"), name="renamed.txt")
    assert art.get_added_local_path_name(os.path.join(root, "sub", "b.txt")) == "data/sub/b.txt"
    assert art.get_added_local_path_name(str(root / "a.txt")) == "renamed.txt"
    assert art.get_added_local_path_name(str(root / "unknown")) is None


# ----- finalize -----------------------------------------------------------------------


def _mutations(tmp: Path) -> Iterator[tuple[str, Any]]:
    local = tmp / "late.txt"
    local.write_text("late")
    yield "add_file", lambda a: a.add_file(str(local))
    yield "add_dir", lambda a: a.add_dir(str(tmp))
    yield "add_reference", lambda a: a.add_reference(local.as_uri())
    yield "remove", lambda a: a.remove("a.txt")

    def new_file(a: soko.Artifact) -> None:
        with a.new_file("n.txt") as handle:
            handle.write("n")

    yield "new_file", new_file


def test_finalized_artifact_refuses_every_change(filled: soko.Artifact, tmp_path: Path) -> None:
    filled.finalize()
    assert not filled.is_draft()
    before = state(filled)
    for method, call in _mutations(tmp_path):
        with pytest.raises(ArtifactFinalizedError, match=method):
            call(filled)
    assert state(filled) == before
    # It is still readable.
    assert filled.get_entry("a.txt").digest == md5_b64(b"alpha")


def test_finalized_error_is_a_value_error(art: soko.Artifact, tmp_path: Path) -> None:
    art.finalize()
    local = tmp_path / "f"
    local.write_text("x")
    with pytest.raises(ValueError):
        art.add_file(str(local))
