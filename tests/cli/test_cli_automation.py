"""``soko automation ls/add/rm/enable/disable/deliveries``, run as the real executable
against a real webhook receiver on a loopback port."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import RunSoko, TreeFactory, assert_user_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


def _ok(soko_cli: RunSoko, *args: str) -> str:
    result = soko_cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_add_deliver_list_and_remove(
    soko_cli: RunSoko, make_tree: TreeFactory, receiver: Receiver
) -> None:
    made = json.loads(
        _ok(
            soko_cli,
            "automation",
            "add",
            "version_created",
            receiver.url,
            "-p",
            "proj",
            "--secret",
            "k",
            "--json",
        )
    )
    assert made["secret"] == "k" and made["project"] == "proj"
    data = make_tree({"a.txt": "a"})
    _ok(soko_cli, "artifact", "put", str(data), "--name", "proj/ds", "--type", "dataset")

    [got] = receiver.wait_for(1)
    assert got.signed_by("k") and got.payload["collection"] == "ds"
    [listed] = json.loads(_ok(soko_cli, "automation", "ls", "-p", "proj", "--json"))
    assert listed["id"] == made["id"] and listed["secret"] is None
    [delivery] = json.loads(
        _ok(soko_cli, "automation", "deliveries", made["id"], "-p", "proj", "--json")
    )
    assert delivery["event_id"] == got.headers["X-Soko-Event-Id"]
    assert delivery["status"] == "delivered" and delivery["last_status_code"] == 204
    assert "delivered" in _ok(soko_cli, "automation", "deliveries", made["id"], "-p", "proj")
    assert made["id"] in _ok(soko_cli, "automation", "ls", "-p", "proj")

    _ok(soko_cli, "automation", "disable", made["id"], "-p", "proj")
    [listed] = json.loads(_ok(soko_cli, "automation", "ls", "-p", "proj", "--json"))
    assert listed["enabled"] is False
    _ok(
        soko_cli,
        "artifact",
        "put",
        str(make_tree({"b.txt": "b"})),
        "--name",
        "proj/ds",
        "--type",
        "dataset",
    )
    assert (
        len(
            json.loads(
                _ok(soko_cli, "automation", "deliveries", made["id"], "-p", "proj", "--json")
            )
        )
        == 1
    )
    _ok(soko_cli, "automation", "enable", made["id"], "-p", "proj")
    assert "yes" in _ok(soko_cli, "automation", "ls", "-p", "proj")

    _ok(soko_cli, "automation", "rm", made["id"], "-p", "proj")
    assert json.loads(_ok(soko_cli, "automation", "ls", "-p", "proj", "--json")) == []


def test_mistakes_are_one_line(soko_cli: RunSoko, receiver: Receiver) -> None:
    assert_user_error(soko_cli("automation", "add", "deleted", receiver.url), code=2)
    assert_user_error(
        soko_cli("automation", "add", "alias_added", "not-a-url", "-p", "proj"), code=2
    )
    assert_user_error(soko_cli("automation", "rm", "nope", "-p", "proj"), code=3)
    assert_user_error(soko_cli("automation", "disable", "nope", "-p", "proj"), code=3)
