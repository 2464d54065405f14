"""The lifecycle of a version from the command line, on the embedded store and through a
live server: put, show, aliases and tags, delete, projects, lineage, get with what it
leaves, and ``--json`` on each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_helpers import CliTarget, RunSoko, TreeFactory, assert_user_error

import soko


def _ok(result: Any) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    out: str = result.stdout
    return out


def _json(soko_cli: RunSoko, *args: str) -> Any:
    return json.loads(_ok(soko_cli(*args, "--json")))


def _versions(soko_cli: RunSoko, name: str) -> dict[str, dict[str, Any]]:
    return {v["version"]: v for v in _json(soko_cli, "artifact", "versions", name)}


def test_put_defaults_and_identical_content(
    soko_cli: RunSoko, cli_target: CliTarget, make_tree: TreeFactory
):
    project = cli_target.project
    data = make_tree({"a.txt": "alpha", "sub/b.txt": "beta"}, name="images")
    # No --name: the folder's name; no --type: dataset (as `wandb artifact put`).
    out = _ok(soko_cli("artifact", "put", str(data), "--name", f"{project}/images"))
    assert out.startswith(f"Logged local/{project}/images:v0 (2 files")
    again = _ok(soko_cli("artifact", "put", str(data) + "/", "--name", f"{project}/images"))
    assert again.startswith(f"No new version: local/{project}/images:v0 holds the same content")
    first = _json(soko_cli, "artifact", "put", str(data), "--name", f"{project}/images", "-a", "x")
    assert first["new_version"] is False
    assert first["version"] == "v0"
    assert first["type"] == "dataset"
    assert set(first["aliases"]) == {"latest", "x"}

    (data / "c.txt").write_text("gamma")
    made = _json(
        soko_cli,
        "artifact",
        "put",
        str(data),
        "--name",
        f"{project}/images",
        "--policy",
        "immutable",
        "--skip-cache",
    )
    assert (made["new_version"], made["version"], made["file_count"]) == (True, "v1", 3)


def test_put_without_a_name_uses_the_folder_name(soko_cli: RunSoko, soko_env, tmp_path: Path):
    data = tmp_path / "mnist-images"
    data.mkdir()
    (data / "a.txt").write_text("alpha")
    out = _ok(soko_cli("artifact", "put", str(data)))
    assert out.startswith("Logged local/uncategorized/mnist-images:v0 (1 file")
    (version,) = _json(soko_cli, "artifact", "versions", "mnist-images")
    assert version["type"] == "dataset"
    single = tmp_path / "weights.pt"
    single.write_bytes(b"w")
    shown = _json(soko_cli, "artifact", "put", str(single), "--type", "model")
    assert shown["name"] == "weights.pt:v0"
    assert shown["type"] == "model"


def test_show_lists_metadata_files_aliases_and_runs(
    soko_cli: RunSoko, cli_target: CliTarget, make_tree: TreeFactory
):
    name = f"{cli_target.project}/ds"
    data = make_tree({"a.txt": "alpha", "sub/b.txt": "beta"})
    _ok(
        soko_cli(
            "artifact",
            "put",
            str(data),
            "--name",
            name,
            "-a",
            "raw",
            "-d",
            "two files",
            "-m",
            '{"rows": 2}',
        )
    )
    with soko.init(project=cli_target.project, job_type="train") as run:
        run.use_artifact("ds:raw")
        reader = run.id

    shown = _json(soko_cli, "artifact", "show", f"{name}:raw")
    assert shown["qualified_name"] == f"local/{name}:v0"
    assert shown["metadata"] == {"rows": 2}
    assert shown["description"] == "two files"
    assert set(shown["aliases"]) == {"latest", "raw"}
    assert [f["path"] for f in shown["files"]] == ["a.txt", "sub/b.txt"]
    assert [f["size"] for f in shown["files"]] == [5, 4]
    assert shown["logged_by"]["job_type"] == "cli"
    assert [r["id"] for r in shown["used_by"]] == [reader]

    text = _ok(soko_cli("artifact", "show", name))
    lines = text.splitlines()
    assert lines[0] == f"local/{name}:v0"
    assert "  Type:        dataset" in lines
    assert '  Metadata:    {"rows": 2}' in lines
    assert any(line.startswith("  Logged by:   run local/") and "job cli" in line for line in lines)
    assert f"  Used by:     run local/{cli_target.project}/{reader} (finished, job train)" in lines
    assert "    sub/b.txt  4 B" in lines


def test_aliases_and_tags_round_trip(
    soko_cli: RunSoko, cli_target: CliTarget, make_tree: TreeFactory
):
    name = f"{cli_target.project}/ds"
    _ok(soko_cli("artifact", "put", str(make_tree({"a": "1"})), "--name", name))
    _ok(soko_cli("artifact", "put", str(make_tree({"a": "2"})), "--name", name))

    out = _ok(soko_cli("artifact", "alias", "add", f"{name}:v0", "gold", "my alias"))
    assert out.strip() == f"local/{name}:v0 aliases: gold, my alias"
    assert _ok(soko_cli("artifact", "get", f"{name}:my alias", "--root", "x")).startswith(
        f"Downloaded local/{name}:v0"
    )
    # An alias names one version of a collection: adding it to v1 moves it there.
    moved = _json(soko_cli, "artifact", "alias", "add", f"{name}:v1", "gold")
    assert set(moved["aliases"]) == {"latest", "gold"}
    versions = _versions(soko_cli, name)
    assert versions["v0"]["aliases"] == ["my alias"]
    assert _ok(soko_cli("artifact", "alias", "rm", f"{name}:gold", "gold")).strip() == (
        f"local/{name}:v1 aliases: latest"
    )

    tagged = _json(soko_cli, "artifact", "tag", "add", f"{name}:v0", "reviewed", "ok to use")
    assert sorted(tagged["tags"]) == ["ok to use", "reviewed"]
    _ok(soko_cli("artifact", "tag", "rm", f"{name}:v0", "reviewed"))
    assert _versions(soko_cli, name)["v0"]["tags"] == ["ok to use"]

    assert_user_error(soko_cli("artifact", "alias", "add", f"{name}:v0", "latest"), 2, "latest")
    assert_user_error(soko_cli("artifact", "alias", "add", f"{name}:v0", "a/b"), 2, "'/'")
    assert_user_error(soko_cli("artifact", "alias", "add", f"{name}:v0", "v7"), 2, "v7")
    assert_user_error(soko_cli("artifact", "alias", "rm", f"{name}:v0", "nope"), 2, "'nope'")
    assert_user_error(soko_cli("artifact", "tag", "add", f"{name}:v0", "a/b"), 2, "tag")
    assert_user_error(soko_cli("artifact", "alias", "add", name, "x"), 2, f"{name}:vN")
    assert_user_error(soko_cli("artifact", "alias", "add", f"{name}:v9", "x"), 3, "v9")
    assert _versions(soko_cli, name)["v0"]["aliases"] == ["my alias"]


def test_delete_a_version(soko_cli: RunSoko, cli_target: CliTarget, make_tree: TreeFactory):
    name = f"{cli_target.project}/ds"
    _ok(soko_cli("artifact", "put", str(make_tree({"a": "1"})), "--name", name))
    _ok(soko_cli("artifact", "put", str(make_tree({"a": "2"})), "--name", name, "-a", "best"))

    assert_user_error(soko_cli("artifact", "delete", name), 2, f"{name}:vN")
    assert_user_error(soko_cli("artifact", "delete", f"{name}:v1"), 2, "best", "--delete-aliases")
    assert set(_versions(soko_cli, name)) == {"v0", "v1"}

    out = _ok(soko_cli("artifact", "delete", f"{name}:best", "--delete-aliases"))
    assert out.startswith(f"Deleted local/{name}:v1")
    versions = _versions(soko_cli, name)
    assert set(versions) == {"v0"}
    assert versions["v0"]["aliases"] == ["latest"]
    assert_user_error(soko_cli("artifact", "get", f"{name}:v1"), 3, "v1")
    deleted = _json(soko_cli, "artifact", "delete", f"{name}:v0")
    assert (deleted["version"], deleted["deleted"]) == ("v0", True)
    assert _versions(soko_cli, name) == {}


def test_projects_are_listed(soko_cli: RunSoko, cli_target: CliTarget, make_tree: TreeFactory):
    data = make_tree({"a": "1"})
    _ok(soko_cli("artifact", "put", str(data), "--name", f"{cli_target.project}/d"))
    found = _json(soko_cli, "projects", "--entity", "local")
    assert {"entity": "local", "name": cli_target.project} in [
        {"entity": p["entity"], "name": p["name"]} for p in found
    ]
    text = _ok(soko_cli("projects"))
    assert text.splitlines()[0].split() == ["ENTITY", "PROJECT", "CREATED"]
    assert any(line.split()[:2] == ["local", cli_target.project] for line in text.splitlines())


def test_lineage_tree(soko_cli: RunSoko, cli_target: CliTarget, make_tree: TreeFactory):
    project = cli_target.project
    _ok(soko_cli("artifact", "put", str(make_tree({"a": "raw"})), "--name", f"{project}/raw"))
    with soko.init(project=project, job_type="train") as run:
        run.use_artifact("raw:latest")
        model = soko.Artifact("model", "model")
        with model.new_file("w.txt") as handle:
            handle.write("weights")
        run.log_artifact(model)
        train = run.id
    with soko.init(project=project, job_type="eval") as run:
        run.use_artifact("model:latest")
        evaluate = run.id

    text = _ok(soko_cli("lineage", f"{project}/model:v0"))
    assert text.splitlines() == [
        f"local/{project}/model:v0",
        "Upstream (where it came from):",
        f"  └── logged by run local/{project}/{train} (finished, job train)",
        f"      └── used local/{project}/raw:v0",
        f"          └── logged by run local/{project}/"
        + text.splitlines()[4].split(f"local/{project}/")[-1],
        "Downstream (what was made from it):",
        f"  └── used by run local/{project}/{evaluate} (finished, job eval)",
    ]
    assert text.splitlines()[4].endswith("(finished, job cli)")

    tree = _json(soko_cli, "lineage", f"{project}/raw:v0", "--direction", "downstream")
    assert "upstream" not in tree
    (user,) = tree["downstream"]
    assert (user["kind"], user["id"]) == ("run", train)
    (logged,) = user["children"]
    assert logged["qualified_name"] == f"local/{project}/model:v0"
    assert [r["id"] for r in logged["children"]] == [evaluate]

    shallow = _ok(soko_cli("lineage", f"{project}/raw:v0", "--depth", "1"))
    assert "--depth to see further" in shallow
    assert evaluate not in shallow
    assert_user_error(soko_cli("lineage", f"{project}/raw:v0", "--depth", "0"), 2, "--depth")


def test_get_says_what_it_leaves_or_checks_out(
    soko_cli: RunSoko, cli_target: CliTarget, make_tree: TreeFactory, tmp_path: Path
):
    name = f"{cli_target.project}/ds"
    _ok(soko_cli("artifact", "put", str(make_tree({"a.txt": "1"})), "--name", name))
    _ok(soko_cli("artifact", "put", str(make_tree({"a.txt": "2", "b.txt": "3"})), "--name", name))
    root = tmp_path / "root"
    _ok(soko_cli("artifact", "get", f"{name}:v1", "--root", str(root)))

    result = soko_cli("artifact", "get", f"{name}:v0", "--root", str(root))
    assert _ok(result).strip() == f"Downloaded local/{name}:v0 to {root}"
    assert result.stderr.strip() == (
        f"Left 1 file in {root} that ds:v0 does not have (b.txt); --checkout removes them."
    )
    assert (root / "a.txt").read_text() == "1"
    assert (root / "b.txt").exists()

    _ok(soko_cli("artifact", "get", f"{name}:v1", "--root", str(root)))
    data = _json(soko_cli, "artifact", "get", f"{name}:v0", "--root", str(root), "--checkout")
    assert data == {
        "name": f"local/{name}:v0",
        "root": str(root),
        "files": 1,
        "left": [],
        "removed": ["b.txt"],
    }
    assert sorted(p.name for p in root.iterdir()) == ["a.txt"]

    a_file = root / "a.txt"
    assert_user_error(
        soko_cli("artifact", "get", name, "--root", str(a_file)), 2, f"--root {a_file} is a file"
    )


def test_reading_an_empty_soko_dir_creates_no_store(soko_cli: RunSoko, soko_env):
    for command, code in (
        (("artifact", "ls", "proj"), 3),
        (("artifact", "versions", "proj/ds"), 3),
        (("artifact", "show", "proj/ds"), 3),
        (("artifact", "get", "proj/ds"), 3),
        (("lineage", "proj/ds"), 3),
        (("artifact", "delete", "proj/ds:v0"), 3),
        (("artifact", "alias", "add", "proj/ds:v0", "x"), 3),
    ):
        assert_user_error(soko_cli(*command), code, f"o soko store at {soko_env.store}")
    assert _json(soko_cli, "projects") == []
    assert "No projects in the embedded store" in soko_cli("projects").stderr
    assert not soko_env.store.exists()


def test_every_command_with_a_result_prints_json(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory, tmp_path: Path
):
    data = make_tree({"a.txt": "1"})
    commands: list[tuple[str, ...]] = [
        ("artifact", "put", str(data), "--name", "proj/ds"),
        ("artifact", "get", "proj/ds", "--root", str(tmp_path / "g")),
        ("artifact", "ls", "proj"),
        ("artifact", "versions", "proj/ds"),
        ("artifact", "show", "proj/ds"),
        ("artifact", "diff", "proj/ds:v0", "proj/ds:v0"),
        ("artifact", "alias", "add", "proj/ds:v0", "a"),
        ("artifact", "tag", "add", "proj/ds:v0", "t"),
        ("artifact", "alias", "rm", "proj/ds:v0", "a"),
        ("artifact", "tag", "rm", "proj/ds:v0", "t"),
        ("artifact", "cache", "cleanup", "1GB"),
        ("lineage", "proj/ds"),
        ("projects",),
        ("whoami",),
        ("verify",),
        ("gc", "--dry-run"),
        ("artifact", "delete", "proj/ds:v0"),
    ]
    for command in commands:
        value = _json(soko_cli, *command)
        assert isinstance(value, dict | list), command
