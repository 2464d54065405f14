"""``soko admin migrate``: a store made at the schema of the previous release (before store
ids and automations) is reported with the migrations an upgrade applies, untouched by
``--check``, then upgraded; its versions, aliases and runs read back byte for byte."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import soko
from soko.cli.main import main
from soko.client import connect
from soko.metadata.engine import HEAD_REVISION, MIGRATIONS_DIR, current_revision, sqlite_url
from soko.service.identity import database_id
from soko.service.store import Store
from soko.storage import identity
from soko.storage.identity import ID_NAME
from soko.storage.local import LocalBlobStore

PREVIOUS_RELEASE = "0005"
"""The schema of the release before store ids (0006), automations (0007) and manifest
indexes (0008)."""

_LARGE = bytes(range(256)) * (8 * 1024)  # 2 MiB: stored loose, not packed


def _downgrade(url: str, revision: str) -> None:
    """The schema as an older soko left it: our own migrations, run backwards."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", os.fspath(MIGRATIONS_DIR))
    engine = create_engine(url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
        conn.commit()
    engine.dispose()


def _admin_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    code = main(["admin", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report: dict[str, object] = json.loads(out)
    return report


def test_a_store_of_the_previous_schema_is_checked_then_upgraded_intact(
    soko_env: object, capsys: pytest.CaptureFixture[str]
) -> None:
    del soko_env
    store_dir = Path(os.environ["SOKO_DIR"])
    files = Path("files")
    files.mkdir()
    (files / "small.txt").write_text("a small file\n")
    (files / "large.bin").write_bytes(_LARGE)
    with soko.init(project="p", config={"lr": 0.1}) as run:
        run.log({"loss": 0.5})
        artifact = soko.Artifact("data", type="dataset")
        artifact.add_dir(str(files))
        run.log_artifact(artifact, aliases=["best"])
        artifact.wait()
    name = artifact.qualified_name
    connect.reset()

    url = sqlite_url(store_dir / "soko.db")
    _downgrade(url, PREVIOUS_RELEASE)
    (store_dir / "store" / ID_NAME).unlink(missing_ok=True)

    check = _admin_json(capsys, "migrate", "--check", "--db", url)
    assert check["current"] == PREVIOUS_RELEASE and check["head"] == HEAD_REVISION
    pending = [step["revision"] for step in check["pending"]]  # type: ignore[attr-defined]
    assert pending == ["0006", "0007", "0008"] and check["applied"] is False
    engine = create_engine(url)
    assert current_revision(engine) == PREVIOUS_RELEASE, "--check changed nothing"

    capsys.readouterr()
    assert main(["admin", "migrate", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "Applied 3 migrations" in out and "0006" in out and "0008" in out
    assert current_revision(engine) == HEAD_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM automations")).scalar() == 0
    engine.dispose()
    again = _admin_json(capsys, "migrate", "--check", "--db", url)
    assert again["current"] == HEAD_REVISION and again["pending"] == []

    api = soko.Api()
    restored = api.artifact("p/data:best")
    assert restored.qualified_name == name
    folder = Path(restored.download("out"))
    assert (folder / "large.bin").read_bytes() == _LARGE
    assert (folder / "small.txt").read_text() == "a small file\n"
    old_run = api.runs("p")[0]
    assert old_run.config["lr"] == 0.1 and old_run.summary["loss"] == 0.5
    capsys.readouterr()
    assert main(["verify"]) == 0, capsys.readouterr()
    # A server opening the upgraded pair binds it: the store gets the database's id.
    opened = Store.open(url, LocalBlobStore(store_dir / "store"))
    assert identity.read_id(opened.blobs) == database_id(opened.engine) is not None
    opened.engine.dispose()


def test_migrate_refuses_what_it_cannot_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = tmp_path / "newer.db"
    engine = create_engine(sqlite_url(newer))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0999')"))
    engine.dispose()
    for args in (
        ["--check", "--db", sqlite_url(newer)],
        ["--db", sqlite_url(tmp_path / "absent.db")],
        ["--check", "--db", "postgresql://nobody@127.0.0.1:1/none"],
    ):
        capsys.readouterr()
        code = main(["admin", "migrate", *args])
        err = capsys.readouterr().err.strip()
        assert code in (1, 2) and len(err.splitlines()) == 1, (args, err)
    assert not (tmp_path / "absent.db").exists()
