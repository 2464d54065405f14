"""``soko registry ls/create/show`` and ``soko artifact link/unlink``, run as the real
executable."""

from __future__ import annotations

import json

from cli_helpers import RunSoko, TreeFactory, assert_user_error


def _ok(soko_cli: RunSoko, *args: str) -> str:
    result = soko_cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_create_link_show_and_unlink(soko_cli: RunSoko, make_tree: TreeFactory) -> None:
    data = make_tree({"w.bin": "weights"})
    _ok(soko_cli, "artifact", "put", str(data), "--name", "proj/clf", "--type", "model")
    created = _ok(
        soko_cli, "registry", "create", "vision", "--type", "model", "--description", "shipped"
    )
    assert "Created registry local/wandb-registry-vision" in created

    linked = _ok(
        soko_cli, "artifact", "link", "proj/clf:v0", "wandb-registry-vision/detector", "-a", "prod"
    )
    assert "Linked local/proj/clf:v0 as local/wandb-registry-vision/detector:v0" in linked

    listed = json.loads(_ok(soko_cli, "registry", "ls", "--json"))
    assert {r["name"] for r in listed} == {"dataset", "model", "vision"}
    shown = json.loads(_ok(soko_cli, "registry", "show", "vision", "--json"))
    assert shown["artifact_types"] == ["model"]
    assert shown["description"] == "shipped"
    [collection] = shown["collections"]
    assert collection["name"] == "detector"
    assert [
        (link["version"], sorted(link["aliases"]), link["source"]) for link in collection["links"]
    ] == [("v0", ["latest", "prod"], "local/proj/clf:v0")]
    assert "detector:v0" in _ok(soko_cli, "registry", "show", "vision")

    assert "Unlinked" in _ok(soko_cli, "artifact", "unlink", "wandb-registry-vision/detector:prod")
    shown = json.loads(_ok(soko_cli, "registry", "show", "vision", "--json"))
    assert shown["collections"][0]["links"] == []


def test_mistakes_are_one_line(soko_cli: RunSoko, make_tree: TreeFactory) -> None:
    data = make_tree({"d.csv": "1"})
    _ok(soko_cli, "artifact", "put", str(data), "--name", "proj/ds", "--type", "dataset")
    _ok(soko_cli, "registry", "create", "models-only", "--type", "model")
    assert_user_error(
        soko_cli("artifact", "link", "proj/ds:v0", "wandb-registry-models-only/c"), code=2
    )
    assert_user_error(soko_cli("registry", "create", "models-only"), code=4)
    assert_user_error(soko_cli("registry", "show", "nope"), code=3)
    assert_user_error(soko_cli("artifact", "unlink", "proj/ds:v0"), code=2)
