"""The `wandb` package and soko, fed the same draft edits, write the same manifest.

Hypothesis draws a folder tree (nested folders, empty files, unicode names) and a sequence
of draft edits: ``add_dir`` (with and without a ``name=`` prefix, with ``merge``),
``add_file`` (renamed, ``overwrite``, ``is_tmp``), ``new_file``, ``remove`` of files and
folder prefixes, and ``file://`` references with and without checksum. Each edit is applied
to a ``wandb.Artifact`` and a ``soko.Artifact``; after each one the two must agree, entry
by entry, on the manifest JSON, the version digest and the size. An edit refused by one
must be refused by the other with the same kind of exception; where wandb, which is not
all-or-nothing, is left half-changed, soko must be left exactly as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wandb
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from wandb_parity import assert_same_artifact, entry_bytes, soko_contents, wandb_contents

import soko

pytestmark = pytest.mark.differential

ALGORITHMS = ["MD5", "XXH128"]

# Letters W&B users put in file names, including ones that need several UTF-8 bytes.
_NAME_ALPHABET = "abcXYZ019 _-.éüßΩ名前🙂"
_segment = st.text(alphabet=_NAME_ALPHABET, min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
_relative = st.lists(_segment, min_size=1, max_size=3).map("/".join)
_content = st.one_of(st.just(b""), st.binary(max_size=48), st.sampled_from([b"same", b"x"]))


def _no_file_is_a_folder(paths: list[str]) -> bool:
    return not any(other.startswith(f"{path}/") for path in paths for other in paths)


_tree = st.dictionaries(_relative, _content, min_size=1, max_size=10).filter(
    lambda tree: _no_file_is_a_folder(list(tree))
)
_prefix = st.one_of(st.none(), _relative)
# Refused by both (soko also refuses empty segments, which wandb silently drops).
_BAD_NAMES = ("../up", "/abs", "d/../../up", "..", "C:\\x")
_bad_name = st.sampled_from(_BAD_NAMES)
_name = st.one_of(_prefix, _prefix, _prefix, _bad_name)

Op = tuple[str, Callable[[Any], Any]]


def _write_tree(root: Path, tree: dict[str, bytes]) -> None:
    for relative, content in tree.items():
        target = root.joinpath(*relative.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _folders(tree: dict[str, bytes]) -> list[str]:
    found = {""}
    for relative in tree:
        parts = relative.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(found)


def _file_uri(path: Path, encoded: bool) -> str:
    # Both spellings occur in the wild: percent-encoded (Path.as_uri) and raw.
    return path.as_uri() if encoded else f"file://{path}"


_KINDS = [
    "add_dir",
    "readd",
    "add_file",
    "overwrite",
    "new_file",
    "remove",
    "ref_file",
    "ref_dir",
    "edit",
]


def _draw_op(
    data: st.DataObject,
    root: Path,
    tree: dict[str, bytes],
    art: Any,
    added_dirs: list[tuple[str, str | None]],
) -> Op:
    files, folders = sorted(tree), _folders(tree)
    kind = data.draw(st.sampled_from(_KINDS), label="kind")
    if kind == "edit":
        # The user changes a file on disk between two edits of the draft.
        source = data.draw(st.sampled_from(files), label="file")
        content = data.draw(_content, label="content")
        root.joinpath(*source.split("/")).write_bytes(content)
        return f"edit({source!r}, {content!r})", lambda a: None
    if kind == "readd" and added_dirs:
        # Change a file of a folder added before, then add the folder again under the same
        # name: a conflict unless merge=True, and wandb adds the other files before failing.
        folder, name = data.draw(st.sampled_from(added_dirs), label="added_dir")
        inside = [f for f in files if not folder or f.startswith(f"{folder}/")]
        changed = root.joinpath(*data.draw(st.sampled_from(inside), label="file").split("/"))
        changed.write_bytes(changed.read_bytes() + b"!")
        merge = data.draw(st.booleans(), label="merge")
        local = str(root.joinpath(*folder.split("/"))) if folder else str(root)
        return f"readd({folder!r}, name={name!r}, merge={merge})", lambda a: a.add_dir(
            local, name=name, merge=merge
        )
    if kind in ("add_dir", "readd"):
        folder = data.draw(st.sampled_from(folders), label="folder")
        name = data.draw(_name, label="name")
        merge = data.draw(st.booleans(), label="merge")
        local = str(root.joinpath(*folder.split("/"))) if folder else str(root)
        if name not in _BAD_NAMES:
            added_dirs.append((folder, name))
        return f"add_dir({folder!r}, name={name!r}, merge={merge})", lambda a: a.add_dir(
            local, name=name, merge=merge
        )
    if kind in ("add_file", "overwrite"):
        source = data.draw(st.sampled_from(files), label="file")
        existing = sorted(soko_contents(art))
        if kind == "overwrite" and existing:
            # Another file under a taken path: refused unless overwrite=True.
            name: str | None = data.draw(st.sampled_from(existing), label="target")
        else:
            name = data.draw(_name, label="name")
        overwrite = data.draw(st.booleans(), label="overwrite")
        # wandb renames an is_tmp file before it checks the name, so it accepts `..` there
        # (as `<hex>..`); soko refuses a bad name whatever is_tmp says.
        name_is_bad = name is not None and name in _BAD_NAMES
        is_tmp = kind == "add_file" and not name_is_bad and data.draw(st.booleans(), label="is_tmp")
        local = str(root.joinpath(*source.split("/")))
        return (
            f"add_file({source!r}, name={name!r}, overwrite={overwrite}, is_tmp={is_tmp})",
            lambda a: a.add_file(local, name=name, overwrite=overwrite, is_tmp=is_tmp),
        )
    if kind == "new_file":
        existing = sorted(soko_contents(art))
        name = data.draw(st.one_of(_relative, st.sampled_from(existing or ["n"])), label="name")
        content = data.draw(_content, label="content")
        mode = data.draw(st.sampled_from(["x", "w"]), label="mode")

        def new_file(a: Any) -> None:
            with a.new_file(name, mode=mode + "b") as handle:
                handle.write(content)

        return f"new_file({name!r}, mode={mode!r}, {content!r})", new_file
    if kind == "remove":
        existing = sorted(soko_contents(art))
        prefixes = sorted({p.rsplit("/", 1)[0] for p in existing if "/" in p})
        target = data.draw(
            st.one_of(
                st.sampled_from(existing or ["missing"]),
                st.sampled_from(prefixes or ["missing"]),
                st.sampled_from([f"{p}/" for p in prefixes] or ["missing/"]),
                _relative,
            ),
            label="target",
        )
        return f"remove({target!r})", lambda a: a.remove(target)
    checksum = data.draw(st.booleans(), label="checksum")
    encoded = data.draw(st.booleans(), label="encoded")
    name = data.draw(_name, label="name")
    if kind == "ref_file":
        source = data.draw(st.sampled_from(files), label="file")
        uri = _file_uri(root.joinpath(*source.split("/")), encoded)
    else:
        folder = data.draw(st.sampled_from(folders), label="folder")
        uri = _file_uri(root.joinpath(*folder.split("/")) if folder else root, encoded)
    return (
        f"add_reference({uri!r}, name={name!r}, checksum={checksum})",
        lambda a: a.add_reference(uri, name=name, checksum=checksum),
    )


def _apply(op: Callable[[Any], Any], art: Any) -> BaseException | None:
    try:
        op(art)
    except Exception as exc:
        return exc
    return None


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(tree=_tree, data=st.data())
def test_random_drafts_match_wandb(algorithm: str, tree: dict[str, bytes], data: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="soko-diff-") as tmp:
        root = Path(tmp) / "tree"
        _write_tree(root, tree)
        w_art = wandb.Artifact("parity", "dataset", digest_algorithm=algorithm)
        s_art = soko.Artifact("parity", "dataset", digest_algorithm=algorithm)
        steps = data.draw(st.integers(min_value=1, max_value=8), label="steps")
        added_dirs: list[tuple[str, str | None]] = []
        for _ in range(steps):
            label, op = _draw_op(data, root, tree, s_art, added_dirs)
            before_wandb = entry_bytes(wandb_contents(w_art))
            before_soko = entry_bytes(soko_contents(s_art))
            s_error = _apply(op, s_art)
            w_error = _apply(op, w_art)
            event(f"{label.split('(')[0]}: {str(w_error)[:30] if w_error else 'ok'}")
            assert (s_error is None) == (w_error is None), (label, s_error, w_error)
            if s_error is not None and w_error is not None:
                assert isinstance(s_error, type(w_error)), (label, s_error, w_error)
                # A refused edit leaves soko as it was, whatever wandb did.
                assert entry_bytes(soko_contents(s_art)) == before_soko, label
                if entry_bytes(wandb_contents(w_art)) != before_wandb:
                    return
            assert_same_artifact(w_art, s_art)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_file_larger_than_one_read_chunk(algorithm: str, tmp_path: Path) -> None:
    # soko hashes small files in one read and large ones in 8 MiB chunks; cross the border.
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024) * (9 * 1024 + 3))
    small = tmp_path / "one-mib.bin"
    small.write_bytes(b"\xab" * (1024 * 1024))
    w_art = wandb.Artifact("parity", "dataset", digest_algorithm=algorithm)
    s_art = soko.Artifact("parity", "dataset", digest_algorithm=algorithm)
    for art in (w_art, s_art):
        art.add_file(str(big))
        art.add_file(str(small))
        art.add_dir(str(tmp_path), name="again")
    assert_same_artifact(w_art, s_art)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_spec_example_matches_wandb(algorithm: str, tmp_path: Path) -> None:
    local = tmp_path / "file1.txt"
    local.write_text("hello")
    w_art = wandb.Artifact("parity", "dataset", digest_algorithm=algorithm)
    s_art = soko.Artifact("parity", "dataset", digest_algorithm=algorithm)
    w_art.add_file(str(local))
    s_art.add_file(str(local))
    assert_same_artifact(w_art, s_art)
    if algorithm == "MD5":
        assert s_art.digest == "a00c2239f036fb656c1dcbf9a32d89b4"


def test_max_objects_is_enforced_like_wandb(tmp_path: Path) -> None:
    root = tmp_path / "refs"
    _write_tree(root, {"a": b"1", "b": b"2", "c/d": b"3"})
    w_art = wandb.Artifact("parity", "dataset")
    s_art = soko.Artifact("parity", "dataset", digest_algorithm="MD5")
    for art in (w_art, s_art):
        with pytest.raises(ValueError, match="max_objects"):
            art.add_reference(root.as_uri(), max_objects=2)
    assert soko_contents(s_art) == {}
    for art in (w_art, s_art):
        art.add_reference(root.as_uri(), max_objects=3)
    assert_same_artifact(w_art, s_art)


@pytest.mark.parametrize(
    "target", ["d", "d/", "d/e", "d/e/", "d/e/f.txt", "top.txt", "d/e/f", "missing"]
)
def test_remove_forms_match_wandb(target: str, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _write_tree(root, {"top.txt": b"t", "d/a.txt": b"a", "d/e/f.txt": b"f", "de/x": b"x"})
    w_art = wandb.Artifact("parity", "dataset")
    s_art = soko.Artifact("parity", "dataset", digest_algorithm="MD5")
    for art in (w_art, s_art):
        art.add_dir(str(root))
    w_error, s_error = (
        _apply(lambda a: a.remove(target), w_art),
        _apply(lambda a: a.remove(target), s_art),
    )
    assert type(s_error) is type(w_error)
    assert_same_artifact(w_art, s_art)


def test_remove_by_entry_matches_wandb(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _write_tree(root, {"a.txt": b"a", "b/c.txt": b"c"})
    w_art = wandb.Artifact("parity", "dataset")
    s_art = soko.Artifact("parity", "dataset", digest_algorithm="MD5")
    for art in (w_art, s_art):
        art.add_dir(str(root))
        art.remove(art.manifest.entries["b/c.txt"] if art is w_art else art.get_entry("b/c.txt"))
    assert_same_artifact(w_art, s_art)
