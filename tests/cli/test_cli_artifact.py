"""``soko artifact put/get/ls/versions/diff``, run as the real executable."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import RunSoko, TreeFactory, assert_user_error


def _put(soko_cli: RunSoko, path: Path | str, name: str, *extra: str) -> str:
    result = soko_cli("artifact", "put", str(path), "--name", name, "--type", "dataset", *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _versions(soko_cli: RunSoko, name: str) -> list[dict[str, object]]:
    result = soko_cli("artifact", "versions", name, "--json")
    assert result.returncode == 0, result.stderr
    data: list[dict[str, object]] = json.loads(result.stdout)
    return data


def test_put_folder_then_get_it_back(soko_cli: RunSoko, make_tree: TreeFactory, tmp_path: Path):
    data = make_tree({"a.txt": "hello", "sub/b.bin": b"\x00\x01" * 500})
    out = _put(
        soko_cli,
        data,
        "proj/ds",
        "--alias",
        "raw",
        "--alias",
        "first",
        "--description",
        "two files",
        "--metadata",
        '{"rows": 2}',
    )
    assert out.startswith("Logged local/proj/ds:v0 (2 files, 1.0 kB; aliases: ")

    (version,) = _versions(soko_cli, "proj/ds")
    assert version["version"] == "v0"
    assert set(version["aliases"]) == {"latest", "raw", "first"}  # type: ignore[arg-type]
    assert version["metadata"] == {"rows": 2}
    assert version["description"] == "two files"
    assert version["file_count"] == 2
    assert version["size"] == 5 + 1000

    root = tmp_path / "out"
    result = soko_cli("artifact", "get", "proj/ds:raw", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Downloaded local/proj/ds:v0 to {root}"
    assert (root / "a.txt").read_text() == "hello"
    assert (root / "sub" / "b.bin").read_bytes() == b"\x00\x01" * 500
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["a.txt", "b.bin"]


def test_put_single_file_and_get_to_default_root(soko_cli: RunSoko, tmp_path: Path):
    model = tmp_path / "weights.pt"
    model.write_bytes(b"w" * 123)
    result = soko_cli("artifact", "put", str(model), "--name", "m", "--type", "model")
    assert result.returncode == 0, result.stderr
    # No project given: SOKO_PROJECT's default, "uncategorized".
    assert result.stdout.startswith("Logged local/uncategorized/m:v0 (1 file, 123 B;")

    result = soko_cli("artifact", "get", "uncategorized/m:v0", "--type", "model")
    assert result.returncode == 0, result.stderr
    # The default root is ./artifacts/<name>:<version>, under the test's working directory.
    downloaded = Path("artifacts") / "m:v0" / "weights.pt"
    assert downloaded.read_bytes() == b"w" * 123


def test_put_uri_reference(soko_cli: RunSoko, tmp_path: Path):
    source = tmp_path / "remote.csv"
    source.write_text("a,b\n1,2\n")
    uri = source.as_uri()
    out = _put(soko_cli, uri, "proj/refs")
    assert "local/proj/refs:v0 (1 file" in out

    root = tmp_path / "fetched"
    result = soko_cli("artifact", "get", "proj/refs", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert (root / "remote.csv").read_text() == "a,b\n1,2\n"


def test_second_put_makes_v1_and_ls_lists_it(soko_cli: RunSoko, make_tree: TreeFactory):
    _put(soko_cli, make_tree({"a.txt": "1"}), "proj/ds", "--alias", "raw")
    _put(soko_cli, make_tree({"a.txt": "2"}), "proj/ds")
    model = make_tree({"w.bin": "w"})
    result = soko_cli("artifact", "put", str(model), "--name", "proj/net", "--type", "model")
    assert result.returncode == 0, result.stderr

    versions = _versions(soko_cli, "proj/ds")
    assert [v["version"] for v in versions] == ["v0", "v1"]
    assert versions[0]["aliases"] == ["raw"]
    assert versions[1]["aliases"] == ["latest"]

    table = soko_cli("artifact", "versions", "local/proj/ds")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "ALIASES", "DIGEST", "FILES", "SIZE", "CREATED"]
    assert lines[1].split()[:2] == ["v0", "raw"]
    assert lines[2].split()[:2] == ["v1", "latest"]
    assert lines[2].split()[2] == versions[1]["digest"]

    listing = soko_cli("artifact", "ls", "proj", "--json")
    assert listing.returncode == 0, listing.stderr
    collections = {c["name"]: c for c in json.loads(listing.stdout)}
    assert set(collections) == {"ds", "net"}
    assert collections["ds"]["versions"] == 2
    assert collections["ds"]["type"] == "dataset"
    assert collections["ds"]["aliases"] == ["latest", "raw"]
    assert collections["net"]["type"] == "model"

    only_models = soko_cli("artifact", "ls", "local/proj", "--type", "model", "--json")
    assert [c["name"] for c in json.loads(only_models.stdout)] == ["net"]

    table = soko_cli("artifact", "ls", "proj")
    assert table.returncode == 0
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == ["NAME", "TYPE", "VERSIONS", "ALIASES", "CREATED"]
    assert [r[:3] for r in rows[1:]] == [["ds", "dataset", "2"], ["net", "model", "1"]]


def test_ls_of_a_project_without_that_type_says_so(soko_cli: RunSoko, make_tree: TreeFactory):
    _put(soko_cli, make_tree({"a.txt": "1"}), "proj/ds")
    result = soko_cli("artifact", "ls", "proj", "--type", "model")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "No artifacts of type model in local/proj." in result.stderr


def test_diff_lists_added_removed_and_changed_paths(soko_cli: RunSoko, make_tree: TreeFactory):
    _put(soko_cli, make_tree({"same.txt": "s", "gone.txt": "g", "edit.txt": "old"}), "proj/ds")
    _put(soko_cli, make_tree({"same.txt": "s", "new.txt": "n", "edit.txt": "new"}), "proj/ds")

    result = soko_cli("artifact", "diff", "proj/ds:v0", "proj/ds:v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["+ new.txt", "- gone.txt", "~ edit.txt"]
    assert "1 added, 1 removed, 1 changed" in result.stderr

    as_json = json.loads(
        soko_cli("artifact", "diff", "proj/ds:v0", "proj/ds:latest", "--json").stdout
    )
    assert as_json == {
        "from": "local/proj/ds:v0",
        "to": "local/proj/ds:v1",
        "added": ["new.txt"],
        "removed": ["gone.txt"],
        "changed": ["edit.txt"],
    }

    same = soko_cli("artifact", "diff", "proj/ds:v1", "proj/ds:v1")
    assert same.stdout == ""
    assert "0 added, 0 removed, 0 changed" in same.stderr


# ----- user mistakes: one line, an exit code, nothing changed ---------------------------


def test_unknown_version(soko_cli: RunSoko, make_tree: TreeFactory):
    _put(soko_cli, make_tree({"a.txt": "1"}), "proj/ds")
    assert_user_error(soko_cli("artifact", "get", "proj/ds:v7"), 3, "local/proj/ds:v7")
    assert_user_error(soko_cli("artifact", "get", "proj/ds:nope"), 3, "local/proj/ds:nope")
    assert_user_error(soko_cli("artifact", "get", "proj/other"), 3, "local/proj/other")
    assert_user_error(soko_cli("artifact", "versions", "proj/other"), 3, "local/proj/other")
    assert_user_error(soko_cli("artifact", "diff", "proj/ds:v0", "proj/ds:v3"), 3, "ds:v3")
    assert_user_error(soko_cli("artifact", "ls", "nowhere"), 3, "local/nowhere")


def test_bad_names(soko_cli: RunSoko, make_tree: TreeFactory):
    data = make_tree({"a.txt": "1"})
    bad = soko_cli("artifact", "put", str(data), "--name", "bad name!", "--type", "dataset")
    assert_user_error(bad, 2, "'bad name!'")
    assert_user_error(
        soko_cli("artifact", "put", str(data), "--name", "ds:v1", "--type", "dataset"),
        2,
        "'ds:v1'",
        "--alias",
    )
    assert_user_error(
        soko_cli("artifact", "put", str(data), "--name", "a/b/c/d", "--type", "dataset"),
        2,
        "'a/b/c/d'",
    )
    assert_user_error(soko_cli("artifact", "get", "proj/bad name!:v0"), 2, "bad name!")
    assert_user_error(soko_cli("artifact", "versions", "ds:v0"), 2, "'ds:v0'")
    assert_user_error(soko_cli("artifact", "ls", "a/b/c"), 2, "'a/b/c'")
    # Nothing was logged by any of them.
    assert_user_error(soko_cli("artifact", "ls", "uncategorized"), 3, "local/uncategorized")


def test_missing_path(soko_cli: RunSoko, tmp_path: Path):
    missing = tmp_path / "no-such-folder"
    result = soko_cli("artifact", "put", str(missing), "--name", "proj/ds", "--type", "dataset")
    assert_user_error(result, 3, f"No such file or directory: {missing}")
    assert_user_error(soko_cli("artifact", "ls", "proj"), 3, "local/proj")


def test_bad_metadata_type_and_arguments(soko_cli: RunSoko, make_tree: TreeFactory):
    data = make_tree({"a.txt": "1"})
    put = ("artifact", "put", str(data), "--name", "proj/ds", "--type", "dataset")
    assert_user_error(soko_cli(*put, "--metadata", "{rows: 2}"), 2, "--metadata is not valid JSON")
    assert_user_error(soko_cli(*put, "--metadata", "[1, 2]"), 2, "JSON object")
    assert_user_error(soko_cli(*put, "--alias", "v3"), 2, "v3")
    assert_user_error(soko_cli(*put, "--policy", "frozen"), 2, "--policy", "'frozen'")
    assert_user_error(soko_cli("artifact", "frobnicate"), 2, "frobnicate")

    assert soko_cli(*put).returncode == 0
    assert_user_error(soko_cli("artifact", "get", "proj/ds", "--type", "model"), 2, "'model'")
    conflict = soko_cli("artifact", "put", str(data), "--name", "proj/ds", "--type", "model")
    assert_user_error(conflict, 4, "'dataset'", "'model'")
    assert [v["version"] for v in _versions(soko_cli, "proj/ds")] == ["v0"]
