"""Distributed artifacts with real processes: many writers upsert into one pending version
at once, a finish commits it; racing conflicts, writers killed before and inside their
upsert, pending versions listed and abandoned, and writers going through two server
processes. The in-process rules (conflicts for the later writer, late upserts, a finish with
nothing upserted) are the backend conformance suite's, run on every backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from child_pipes import read_line, tell

# The server fixtures are used by importing them (pg_database: the session's PostgreSQL
# database, for the server pair on PostgreSQL).
from server_fixtures import SokoServer, pg_database, point_sdk_at  # noqa: F401

import soko
from soko.client.connect import get_backend
from soko.errors import NotFoundError

if TYPE_CHECKING:
    from tests.conftest import SokoEnv

pytestmark = pytest.mark.integration

PROJECT = "dist"
NAME = "shared-dataset"
_READY_TIMEOUT = 120.0  # a writer's start-up and hashing, on a loaded machine

# One writer process: writes and hashes its files, says it is ready and waits for the word
# to go on its stdin, upserts them, and reports what happened as JSON on stdout. ``crash``
# makes it SIGKILL itself at one point: "after_upload" (blobs stored, no upsert yet) or
# "in_transaction" (entries inserted, the upsert's transaction not yet committed).
WRITER = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path

    import soko
    from soko.errors import ConflictError

    config = json.loads(sys.argv[1])

    def die(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if config.get("crash") == "after_upload":
        from soko.client.local import LocalBackend
        LocalBackend.upsert = die
    elif config.get("crash") == "in_transaction":
        import soko.service.distributed as distributed
        distributed.add_lineage = die

    folder = Path(config["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in config["files"].items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    run = soko.init(project=config["project"], group=config["group"], job_type="writer")
    artifact = soko.Artifact(config["name"], type="dataset")
    artifact.add_dir(str(folder))
    # Everything up to here (start-up, hashing) is done before the word to go, so that
    # the writers' uploads and upserts really overlap.
    print("ready", flush=True)
    sys.stdin.readline()
    run.upsert_artifact(artifact)
    try:
        artifact.wait()
        outcome = {"ok": True, "run": run.id, "pending": artifact.id}
    except ConflictError as exc:
        outcome = {"ok": False, "run": run.id, "error": "ConflictError", "message": str(exc)}
    try:
        run.finish()
    except ConflictError:
        pass
    print(json.dumps(outcome))
    """
)


class Writers:
    """Starts writer processes against the test's store; all go at once, on one word, once
    every one of them is ready (a writer spawned after that goes at once)."""

    def __init__(self, env: SokoEnv, tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.script = tmp_path / "writer.py"
        self.script.write_text(WRITER)
        self.count = 0
        self.started = False
        self.waiting: list[subprocess.Popen[str]] = []

    def spawn(
        self,
        files: dict[str, str],
        *,
        group: str,
        crash: str | None = None,
        server: tuple[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """A writer of *files*; through the server ``(url, api key)`` when given."""
        self.count += 1
        config = {
            "folder": str(self.tmp_path / f"writer{self.count}"),
            "files": files,
            "project": PROJECT,
            "group": group,
            "name": NAME,
            "crash": crash,
        }
        environment = dict(os.environ)
        environment.update(
            SOKO_DIR=str(self.env.store),
            SOKO_CACHE_DIR=str(self.tmp_path / f"cache{self.count}"),
            SOKO_SILENT="true",
            PYTHONPATH=os.pathsep.join(sys.path),
        )
        environment.pop("SOKO_BASE_URL", None)
        environment.pop("SOKO_API_KEY", None)
        if server is not None:
            environment.update(SOKO_BASE_URL=server[0], SOKO_API_KEY=server[1])
            environment["SOKO_DIR"] = str(self.tmp_path / f"client{self.count}")
        process = subprocess.Popen(
            [sys.executable, str(self.script), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        if self.started:
            tell(process, "go")
        else:
            self.waiting.append(process)
        return process

    def start(self) -> None:
        for process in self.waiting:
            said = read_line(process, timeout=_READY_TIMEOUT, what="a writer getting ready")
            assert said == "ready", said
        for process in self.waiting:
            tell(process, "go")
        self.waiting.clear()
        self.started = True

    @staticmethod
    def outcome(process: subprocess.Popen[str]) -> dict[str, Any]:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, f"writer failed ({process.returncode}):\n{err}"
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    @staticmethod
    def killed(process: subprocess.Popen[str]) -> None:
        _out, err = process.communicate(timeout=180)
        assert process.returncode == -signal.SIGKILL, f"writer was not killed:\n{err}"


@pytest.fixture
def writers(soko_env: SokoEnv, tmp_path: Path) -> Writers:
    return Writers(soko_env, tmp_path)


def files_of(writer: int, count: int) -> dict[str, str]:
    return {f"w{writer}/file{i:03}.txt": f"writer {writer} file {i}\n" * 7 for i in range(count)}


def pending(group: str) -> list[Any]:
    return [
        p for p in get_backend().list_pending("local", PROJECT, NAME) if p.distributed_id == group
    ]


def finish(group: str, files: dict[str, str] | None = None, **kwargs: Any) -> soko.Artifact:
    with soko.init(project=PROJECT, group=group, job_type="finisher") as run:
        artifact = soko.Artifact(NAME, type="dataset")
        for path, content in (files or {}).items():
            with artifact.new_file(path, "w") as handle:
                handle.write(content)
        run.finish_artifact(artifact, **kwargs)
        artifact.wait()
    return artifact


def test_eight_processes_upsert_fifty_files_each_then_one_finish(writers: Writers) -> None:
    processes = [writers.spawn(files_of(w, 50), group="eight") for w in range(8)]
    writers.start()
    outcomes = [Writers.outcome(p) for p in processes]

    assert all(o["ok"] for o in outcomes), outcomes
    assert len({o["pending"] for o in outcomes}) == 1
    (waiting,) = pending("eight")
    assert waiting.file_count == 400
    with pytest.raises(NotFoundError):
        soko.Api().artifact(f"{PROJECT}/{NAME}:latest")

    artifact = finish("eight", aliases=["complete"])

    versions = soko.Api().artifacts("dataset", f"{PROJECT}/{NAME}")
    assert [v.version for v in versions] == ["v0"]
    assert artifact.version == "v0" and artifact.file_count == 400
    expected = {f"{path}": content for w in range(8) for path, content in files_of(w, 50).items()}
    assert {e.path for e in artifact.manifest} == set(expected)
    root = Path(artifact.download())
    artifact.verify(str(root))
    assert all((root / p).read_text() == c for p, c in expected.items())
    assert set(artifact.aliases) == {"latest", "complete"}
    assert pending("eight") == []


def test_eight_writers_are_all_recorded_as_logging_the_version(writers: Writers) -> None:
    processes = [writers.spawn(files_of(w, 3), group="lineage") for w in range(8)]
    writers.start()
    outcomes = [Writers.outcome(p) for p in processes]
    artifact = finish("lineage")

    backend = get_backend()
    assert artifact.id is not None
    logged = {r.id for r in backend.runs_of_version(artifact.id, "logged")}
    assert logged >= {o["run"] for o in outcomes}
    assert len(logged) == 9  # eight writers and the finisher
    for outcome in outcomes:
        run = soko.Api().run(f"local/{PROJECT}/{outcome['run']}")
        assert [a.id for a in run.logged_artifacts()] == [artifact.id]


def test_two_processes_racing_on_one_path_one_wins_and_keeps_its_entries(
    writers: Writers,
) -> None:
    first = writers.spawn({"same.txt": "first", "only-first.txt": "1"}, group="race")
    second = writers.spawn({"same.txt": "second", "only-second.txt": "2"}, group="race")
    writers.start()
    outcomes = [Writers.outcome(first), Writers.outcome(second)]

    winners = [o for o in outcomes if o["ok"]]
    losers = [o for o in outcomes if not o["ok"]]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0]["error"] == "ConflictError" and "same.txt" in losers[0]["message"]
    winner_suffix = "first" if winners[0] is outcomes[0] else "second"
    artifact = finish("race")
    assert {e.path for e in artifact.manifest} == {"same.txt", f"only-{winner_suffix}.txt"}
    root = Path(artifact.download())
    assert (root / "same.txt").read_text() == winner_suffix


def test_a_writer_killed_after_uploading_leaves_the_pending_version_intact(
    writers: Writers,
) -> None:
    healthy = [writers.spawn(files_of(w, 20), group="crash-upload") for w in range(3)]
    doomed = writers.spawn(files_of(9, 20), group="crash-upload", crash="after_upload")
    writers.start()
    assert all(Writers.outcome(p)["ok"] for p in healthy)
    Writers.killed(doomed)

    (waiting,) = pending("crash-upload")
    assert waiting.file_count == 60
    # The crashed writer is run again, as a job scheduler would; its blobs are there
    # already and its upsert merges as if nothing had happened.
    retry = writers.spawn(files_of(9, 20), group="crash-upload")
    assert Writers.outcome(retry)["ok"]
    artifact = finish("crash-upload")
    assert artifact.file_count == 80


def test_a_writer_killed_inside_its_upsert_transaction_adds_nothing(writers: Writers) -> None:
    first = writers.spawn(files_of(0, 10), group="crash-tx")
    writers.start()
    assert Writers.outcome(first)["ok"]
    doomed = writers.spawn(files_of(1, 10), group="crash-tx", crash="in_transaction")
    Writers.killed(doomed)

    (waiting,) = pending("crash-tx")
    assert waiting.file_count == 10
    started = time.monotonic()
    after = writers.spawn(files_of(2, 10), group="crash-tx")
    assert Writers.outcome(after)["ok"]
    # The killed writer's transaction was rolled back and its lock released: the next
    # writer did not wait for SQLite's 60 s busy timeout.
    assert time.monotonic() - started < 50
    artifact = finish("crash-tx")
    paths = {e.path for e in artifact.manifest}
    assert paths == set(files_of(0, 10)) | set(files_of(2, 10))


def test_a_pending_version_can_be_listed_and_abandoned(soko_env: SokoEnv) -> None:
    with soko.init(project=PROJECT, group="abandon") as run:
        artifact = soko.Artifact(NAME, type="dataset")
        with artifact.new_file("a.txt", "w") as handle:
            handle.write("a")
        run.upsert_artifact(artifact).wait()
    backend = get_backend()
    (waiting,) = backend.list_pending("local", PROJECT)
    assert (waiting.distributed_id, waiting.collection, waiting.state) == (
        "abandon",
        NAME,
        "PENDING",
    )
    backend.abandon_pending("local", PROJECT, NAME, "abandon")
    assert backend.list_pending("local", PROJECT) == []
    with pytest.raises(NotFoundError):
        backend.abandon_pending("local", PROJECT, NAME, "abandon")
    fresh = finish("abandon")
    assert (fresh.version, fresh.file_count) == ("v0", 0)


@dataclass
class ServerPair:
    """Two soko server processes sharing one metadata database and one blob folder."""

    first: SokoServer
    second: SokoServer

    @property
    def key(self) -> str:
        return self.first.admin_key

    def url_for(self, writer: int) -> tuple[str, str]:
        """Writers alternate between the two servers."""
        return ((self.first, self.second)[writer % 2].url, self.key)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server_pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    root = tmp_path_factory.mktemp("servers")
    if request.param == "postgresql":
        # The upserts' row locks are PostgreSQL's here (SQLite serialises every writer).
        db_url = str(request.getfixturevalue("pg_database"))
    else:
        db_url = f"sqlite:///{root / 'meta.db'}"
    shared = {"db": db_url, "store": str(root / "blobs")}
    first = SokoServer(root / "first", **shared)
    try:
        second = SokoServer(root / "second", **shared, admin_key=first.admin_key)
    except BaseException:
        first.stop()
        raise
    try:
        yield ServerPair(first, second)
    finally:
        first.stop()
        second.stop()


def sdk_through(
    server: SokoServer, key: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder.mkdir()
    point_sdk_at(server, key, tmp_path=folder, monkeypatch=monkeypatch)


def test_eight_processes_through_two_server_processes(
    writers: Writers, server_pair: ServerPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes = [
        writers.spawn(files_of(w, 50), group="servers", server=server_pair.url_for(w))
        for w in range(8)
    ]
    writers.start()
    outcomes = [Writers.outcome(p) for p in processes]
    assert all(o["ok"] for o in outcomes), outcomes
    assert len({o["pending"] for o in outcomes}) == 1

    sdk_through(server_pair.first, server_pair.key, tmp_path / "finisher", monkeypatch)
    (waiting,) = pending("servers")
    assert waiting.file_count == 400
    finished = finish("servers")
    assert (finished.version, finished.file_count) == ("v0", 400)

    sdk_through(server_pair.second, server_pair.key, tmp_path / "reader", monkeypatch)
    artifact = soko.Api().artifact(f"{PROJECT}/{NAME}:latest")
    assert artifact.id == finished.id
    expected = {p: c for w in range(8) for p, c in files_of(w, 50).items()}
    assert {e.path for e in artifact.manifest} == set(expected)
    root_dir = Path(artifact.download())
    artifact.verify(str(root_dir))
    assert all((root_dir / p).read_text() == c for p, c in expected.items())
    assert pending("servers") == []


def test_racing_conflict_through_two_server_processes(
    writers: Writers, server_pair: ServerPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contenders = [
        writers.spawn(
            {"same.txt": f"writer {w}", f"only-{w}.txt": str(w)},
            group="server-race",
            server=server_pair.url_for(w),
        )
        for w in range(6)
    ]
    writers.start()
    outcomes = [Writers.outcome(p) for p in contenders]

    winners = [w for w, o in enumerate(outcomes) if o["ok"]]
    assert len(winners) == 1, outcomes
    assert all(o["error"] == "ConflictError" for o in outcomes if not o["ok"]), outcomes
    sdk_through(server_pair.second, server_pair.key, tmp_path / "finisher", monkeypatch)
    (waiting,) = pending("server-race")
    assert waiting.file_count == 2
    artifact = finish("server-race")
    assert {e.path for e in artifact.manifest} == {"same.txt", f"only-{winners[0]}.txt"}
    assert Path(artifact.download(), "same.txt").read_text() == f"writer {winners[0]}"
