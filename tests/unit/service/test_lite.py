"""The embedded store's short commands on sqlite3 (soko.service.lite) run the service's own
statements and give the service's answers, on one database, each path reading what the
other wrote; and ``soko artifact ls``, ``init`` and ``finish`` do not load SQLAlchemy."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import ClauseElement
from sqlalchemy.dialects import sqlite

from soko.core.digests import Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.errors import NotFoundError, ValidationError
from soko.metadata.connect import HEAD_REVISION, open_current
from soko.service import collections, lite, runs, versions
from soko.service.commit import commit_version
from soko.service.store import Store

ENTITY = "local"
PROJECT = "proj"
SRC = Path(__file__).resolve().parents[3] / "src"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_local(tmp_path / "store")


@pytest.fixture
def db(store: Store, tmp_path: Path) -> lite.Database:
    conn = open_current(tmp_path / "store" / "soko.db", read_only=False)
    assert conn is not None
    return lite.Database(conn)


def log(store: Store, content: bytes, name: str, *, type_name: str = "dataset") -> str:
    digest = Digest.of_bytes(content)
    store.blobs.put_bytes(digest, content)
    manifest = Manifest.of([Entry(path="f.txt", digest=digest.b64, size=len(content))])
    request = CommitRequest(
        entity=ENTITY, project=PROJECT, name=name, type=type_name, manifest=manifest,
        aliases=["best"],
    )  # fmt: skip
    return commit_version(store, request).id


@pytest.mark.parametrize("statement", lite.STATEMENTS, ids=lambda s: s.source)
def test_each_statement_is_the_services_as_sqlalchemy_compiles_it(
    statement: lite.Statement,
) -> None:
    module, name = statement.source.split(".")
    source = getattr(importlib.import_module(f"soko.service.{module}"), name)
    assert isinstance(source, ClauseElement)
    dialect = sqlite.dialect(paramstyle="named")
    if statement.columns is None:
        compiled = source.compile(dialect=dialect)
    else:
        compiled = source.compile(dialect=dialect, column_keys=list(statement.columns))
    assert " ".join(str(compiled).split()) == statement.sql
    # Values the statement holds itself (not the parameters left to each execution).
    held = {k: v for k, v in compiled.params.items() if type(v) in (str, int, bool)}
    assert held == dict(statement.constants)


def test_listing_gives_the_services_records(store: Store, db: lite.Database) -> None:
    log(store, b"one", "a")
    log(store, b"two", "a")
    log(store, b"three", "b", type_name="model")
    collections.update_collection(store, ENTITY, PROJECT, "b", tags_to_set=["y", "x"])
    assert lite.list_projects(db, ENTITY) == versions.list_projects(store, ENTITY)
    assert lite.list_projects(db, "nobody") == []
    for type_name in (None, "model", "other"):
        listed = lite.list_collections(db, ENTITY, PROJECT, type_name)
        assert listed == versions.list_collections(store, ENTITY, PROJECT, type_name)
    [a, b] = lite.list_collections(db, ENTITY, PROJECT) or []
    assert (a.version_count, sorted(a.aliases), b.tags) == (2, ["best", "latest"], ["x", "y"])
    assert lite.list_collections(db, ENTITY, "elsewhere") == []
    # A registry's project lives in its organisation's entity: the service finds which.
    assert lite.list_collections(db, ENTITY, "wandb-registry-model") is None


def test_bad_names_are_refused_as_the_service_refuses_them(db: lite.Database) -> None:
    with pytest.raises(ValidationError):
        lite.list_projects(db, "bad/entity")
    with pytest.raises(ValidationError):
        lite.list_collections(db, ENTITY, "bad/project")
    with pytest.raises(ValidationError):
        lite.start_run(db, run_id="bad:id", entity=ENTITY, project=PROJECT)
    with pytest.raises(ValidationError):
        lite.finish_run(db, "r1", state="asleep")
    with pytest.raises(NotFoundError, match="No run with id 'nope'"):
        lite.get_run(db, "nope")


def test_a_run_started_and_finished_here_reads_back_the_same_through_the_service(
    store: Store, db: lite.Database
) -> None:
    config = {"lr": 0.1, "layers": [1, 2], "name": "ü"}
    started = lite.start_run(
        db, run_id="r1", entity="team", project="new", name="n", job_type="train",
        group="g", config=config,
    )  # fmt: skip
    assert started == runs.get_run(store, "r1")
    assert (started.entity, started.project, started.config) == ("team", "new", config)
    assert [p.name for p in versions.list_projects(store, "team")] == ["new"]
    lite.finish_run(db, "r1", state="failed")
    finished = runs.get_run(store, "r1")
    assert finished == lite.get_run(db, "r1")
    assert finished.state == "failed" and finished.finished_at is not None
    assert finished.finished_at >= finished.created_at
    # Resumed: running again, its creation kept.
    resumed = lite.start_run(db, run_id="r1", entity="team", project="new")
    assert resumed.state == "running" and resumed.finished_at is None
    assert resumed.created_at == started.created_at and resumed.name == "n"


def test_a_run_the_service_wrote_reads_back_the_same_here(store: Store, db: lite.Database) -> None:
    runs.start_run(store, run_id="r2", entity=ENTITY, project=PROJECT, config={"a": 1})
    runs.finish_run(store, "r2", state="finished")
    assert lite.get_run(db, "r2") == runs.get_run(store, "r2")
    # Same entity and project: found, not inserted twice.
    lite.start_run(db, run_id="r3", entity=ENTITY, project=PROJECT)
    assert len(versions.list_projects(store, ENTITY)) == 1


def test_a_store_to_create_or_migrate_is_left_to_the_engine(tmp_path: Path) -> None:
    path = tmp_path / "soko.db"
    assert open_current(path, read_only=False) is None
    assert not path.exists()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    conn.execute("INSERT INTO alembic_version VALUES ('0006')")
    conn.commit()
    conn.close()
    assert HEAD_REVISION != "0006"
    assert open_current(path, read_only=False) is None


def test_short_commands_do_not_load_sqlalchemy(tmp_path: Path, store: Store) -> None:
    """What keeps ``soko artifact ls`` and a script's ``init`` + ``finish`` fast (timed by
    bench/startup_bench.py): the modules they load, not a time."""
    log(store, b"one", "a")
    script = (
        "import sys, soko\n"
        "from soko.cli.main import main\n"
        f"assert main(['artifact', 'ls', '{PROJECT}']) == 0\n"
        f"run = soko.init(project='{PROJECT}', config={{'x': 1}})\n"
        "run.finish()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('sqlalchemy'))))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOKO_", "WANDB_"))}
    env.update(
        PYTHONPATH=str(SRC), SOKO_DIR=str(tmp_path / "store"), SOKO_SILENT="true",
        SOKO_CACHE_DIR=str(tmp_path / "cache"), SOKO_CONFIG_DIR=str(tmp_path / "config"),
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + script],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    listing, loaded = result.stdout.rsplit("\n", 2)[:2]
    assert "a" in listing and "dataset" in listing
    assert json.loads(loaded) == []
    [run] = runs.list_runs(store, ENTITY, PROJECT)
    assert run.state == "finished" and run.config == {"x": 1}
