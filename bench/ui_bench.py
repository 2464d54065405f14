"""The web UI's large pages, timed on the server: a collection of 10,000 versions and a
version of 100,000 files, beside the API answers that read the same data.

Run by hand (a minute or two)::

    .venv/bin/python bench/ui_bench.py [--versions 10000] [--files 100000]
        [--lineage-runs 500] [--rounds 15] [--only-version] [--baseline-src DIR]

The store is an embedded store in a temporary folder: one version of ``--files`` files
(references, so that no blob is written: the manifest is the same size), committed through
the service, then ``--versions`` rows of one collection copied from a committed version
(with an alias every 100 versions and a tag every 50). Requests go through the app
in-process (Starlette's test client), so the time is the server's: routing, the queries,
the template, no network. Each round alternates the compared requests; the medians and
the ratios UI/API are printed. Peers:

- ``collection page 1``: ``/p/e/p/c/many`` (50 versions, with aliases and tags), against
  the API's ``GET .../collections/many/versions`` (all of them, as JSON);
- ``version page 1``: ``/v/<id>`` (100 files of the top folder), warm (what the first
  view read is kept between requests) and first view (the in-process caches emptied before
  each request: the index stored at commit is read, or before it existed the manifest),
  against the API's ``GET /versions/<id>/manifest`` (the manifest's bytes, read from the
  blob store); with this code also the first view of a version whose index is not stored
  (committed before indexes existed: the view builds and stores it);
- ``lineage``: the graph of a dataset used by ``--lineage-runs`` runs of as many job types,
  each logging a version of a collection of its own (nothing collapses: 2N+1 nodes),
  against the API's ``GET /versions/<id>/runs?direction=used`` (the same runs, as JSON).

``--only-version`` builds and times the version pages only. ``--baseline-src DIR`` (the
``src`` folder of another checkout) runs the version pages with that code too, each side
in a process of its own on a store it built, the sides alternating twice.

Nothing is asserted; docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.metadata.schema import aliases, collections, lineage, tags, versions
from soko.metadata.schema import runs as runs_table
from soko.server.app import create_app
from soko.server.auth import bootstrap_admin
from soko.server.config import ServerConfig
from soko.service.commit import commit_version
from soko.service.store import Store

ADMIN_KEY = "bench-admin-key-0123456789-abcdefghij"


def _reference(i: int) -> Entry:
    return Entry(
        path=f"shard-{i % 100:02d}/item-{i:06d}.bin" if i % 2 else f"item-{i:06d}.jpg",
        digest=f"s3://bench/objects/{i:06d}",
        ref=f"s3://bench/objects/{i:06d}",
        size=1000 + i,
    )


def build(root: Path, version_count: int, file_count: int) -> tuple[Store, str]:
    store = Store.open_local(root)
    big = commit_version(
        store,
        CommitRequest(
            entity="e",
            project="p",
            name="big",
            type="dataset",
            manifest=Manifest.of(_reference(i) for i in range(file_count)),
        ),
    )
    seed = commit_version(
        store,
        CommitRequest(
            entity="e",
            project="p",
            name="many",
            type="model",
            manifest=Manifest.of([_reference(0)]),
        ),
    )
    with store.engine.begin() as conn:
        row = conn.execute(select(versions).where(versions.c.id == seed.id)).one()._asdict()
        rows = []
        for index in range(1, version_count):
            copy = dict(row)
            copy.update(id=uuid.uuid4().hex, version_index=index, digest=uuid.uuid4().hex)
            rows.append(copy)
        if not rows:
            return store, big.id
        conn.execute(insert(versions), rows)
        conn.execute(
            insert(aliases),
            [
                {
                    "collection_id": row["collection_id"],
                    "alias": f"a{r['version_index']}",
                    "version_id": r["id"],
                }
                for r in rows
                if r["version_index"] % 100 == 0
            ],
        )
        conn.execute(
            insert(tags),
            [{"version_id": r["id"], "tag": "t"} for r in rows if r["version_index"] % 50 == 0],
        )
    return store, big.id


def build_lineage(store: Store, run_count: int) -> str:
    """A dataset used by *run_count* runs of distinct job types, each logging a version of
    its own collection (rows copied from one committed version, as in :func:`build`); the
    dataset's id."""
    source = commit_version(
        store,
        CommitRequest(
            entity="e",
            project="p",
            name="source",
            type="dataset",
            manifest=Manifest.of([_reference(1)]),
        ),
    )
    stamp = datetime.now(UTC)
    with store.engine.begin() as conn:
        seed = conn.execute(select(versions).where(versions.c.id == source.id)).one()._asdict()
        project_id = conn.execute(
            select(collections.c.project_id).where(collections.c.id == seed["collection_id"])
        ).scalar_one()
        run_rows, collection_rows, version_rows, lineage_rows = [], [], [], []
        for i in range(run_count):
            run_id = f"run{i:05d}"
            run_rows.append(
                {
                    "id": run_id,
                    "project_id": project_id,
                    "name": run_id,
                    "job_type": f"job-{i}",
                    "config": {},
                    "state": "finished",
                    "created_at": stamp,
                }
            )
            collection_rows.append(
                {
                    "project_id": project_id,
                    "name": f"out-{i}",
                    "type": "model",
                    "kind": "sequence",
                    "next_index": 1,
                    "created_at": stamp,
                }
            )
        conn.execute(insert(runs_table), run_rows)
        conn.execute(insert(collections), collection_rows)
        made = dict(
            conn.execute(
                select(collections.c.name, collections.c.id).where(collections.c.name.like("out-%"))
            ).all()
        )
        for i in range(run_count):
            version_id = uuid.uuid4().hex
            row = dict(seed)
            row.update(
                id=version_id,
                collection_id=made[f"out-{i}"],
                version_index=0,
                digest=uuid.uuid4().hex,
                created_by_run=f"run{i:05d}",
            )
            version_rows.append(row)
            lineage_rows.append(
                {
                    "run_id": f"run{i:05d}",
                    "version_id": source.id,
                    "direction": "used",
                    "created_at": stamp,
                }
            )
            lineage_rows.append(
                {
                    "run_id": f"run{i:05d}",
                    "version_id": version_id,
                    "direction": "logged",
                    "created_at": stamp,
                }
            )
        conn.execute(insert(versions), version_rows)
        conn.execute(insert(lineage), lineage_rows)
    return source.id


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def compare(args: argparse.Namespace) -> int:
    """The version pages of this checkout and of ``--baseline-src``, each in a child."""
    this_src = str(Path(__file__).resolve().parents[1] / "src")
    sides = {"this": this_src, "baseline": args.baseline_src}
    times: dict[str, dict[str, list[float]]] = {"this": {}, "baseline": {}}
    rounds = max(1, args.rounds // 2)
    for side in ["this", "baseline"] * 2:
        command = [
            sys.executable,
            __file__,
            "--only-version",
            "--json",
            f"--files={args.files}",
            f"--rounds={rounds}",
        ]
        env = {**os.environ, "PYTHONPATH": sides[side]}
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        for name, values in json.loads(out.stdout).items():
            times[side].setdefault(name, []).extend(values)
    print(f"{args.files} files; medians of {2 * rounds} rounds per side (ms)")
    print(f"| {'request':<46} | {'this ms':>8} | {'baseline ms':>11} | {'this/baseline':>13} |")
    print(f"| {'-' * 46} | {'-' * 7}:| {'-' * 10}:| {'-' * 12}:|")
    for name in times["this"]:
        mine = statistics.median(times["this"][name]) * 1000
        theirs = times["baseline"].get(name)
        other = statistics.median(theirs) * 1000 if theirs else float("nan")
        print(f"| {name:<46} | {mine:8.1f} | {other:11.1f} | {mine / other:13.3f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--lineage-runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only-version", action="store_true")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-src")
    args = parser.parse_args(argv)
    if args.baseline_src:
        return compare(args)
    if args.only_version:
        args.versions, args.lineage_runs = 1, 0
    with tempfile.TemporaryDirectory(prefix="soko-ui-bench-") as folder:
        built = time.perf_counter()
        store, big_id = build(Path(folder), args.versions, args.files)
        source_id = build_lineage(store, args.lineage_runs) if args.lineage_runs else big_id
        print(f"store built in {time.perf_counter() - built:.1f} s", file=sys.stderr)
        bootstrap_admin(store.engine, env_key=ADMIN_KEY)
        app = create_app(ServerConfig(db_url="", store_url=folder), store=store, local_ui=True)
        client = TestClient(app, base_url="http://127.0.0.1")
        api = {"Authorization": f"Bearer {ADMIN_KEY}"}

        def get(path: str, **headers: str) -> None:
            answer = client.get(path, headers=headers)
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")

        def forget() -> None:
            # What a request keeps in process: the baseline's file trees, this code's
            # indexes, both sides' parsed manifests.
            if hasattr(app.state, "ui_trees"):
                app.state.ui_trees = type(app.state.ui_trees)()
            for cache in ("_manifests", "_indexes"):
                if hasattr(store, cache):
                    getattr(store, cache).clear()

        def cold_version_page() -> None:
            forget()
            get(f"/v/{big_id}")

        def unindexed_version_page() -> None:
            forget()
            with store.engine.begin() as conn:
                conn.execute(text("DELETE FROM manifest_indexes"))
            get(f"/v/{big_id}")

        peers: dict[str, Callable[[], None]] = {
            "collection page 1 (UI)": lambda: get("/p/e/p/c/many"),
            "all versions (API JSON)": lambda: get(
                "/api/v1/projects/e/p/collections/many/versions", **api
            ),
            "version page 1, warm (UI)": lambda: get(f"/v/{big_id}"),
            "version page 1, first view (UI)": cold_version_page,
            "manifest bytes (API)": lambda: get(f"/api/v1/versions/{big_id}/manifest", **api),
            "lineage graph (UI)": lambda: get(f"/v/{source_id}/lineage"),
            "runs that used it (API)": lambda: get(
                f"/api/v1/versions/{source_id}/runs?direction=used", **api
            ),
        }
        if hasattr(store, "_indexes"):
            peers["version page 1, first view, index not stored (UI)"] = unindexed_version_page
        if args.only_version:
            for name in list(peers):
                if "version page" not in name and "manifest" not in name:
                    del peers[name]
        for call in peers.values():  # once, untimed: imports, template compilation
            call()
        times: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(args.rounds):
            for name, call in peers.items():
                times[name].append(timed(call))
    if args.json:
        print(json.dumps(times))
        return 0
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(
        f"{args.versions} versions, {args.files} files, {args.lineage_runs} runs in the "
        f"lineage; medians of {args.rounds} rounds (ms)"
    )
    print(f"| {'request':<50} | {'median ms':>9} | {'min ms':>7} |")
    print(f"| {'-' * 50} | {'-' * 9}:| {'-' * 6}:|")
    for name, values in times.items():
        print(f"| {name:<50} | {medians[name]:9.1f} | {min(values) * 1000:7.1f} |")
    print()
    warm = medians["version page 1, warm (UI)"] / medians["manifest bytes (API)"]
    cold = medians["version page 1, first view (UI)"] / medians["manifest bytes (API)"]
    print(f"version page warm / manifest bytes: {warm:.2f}; first view / manifest: {cold:.2f}")
    if not args.only_version:
        collection = medians["collection page 1 (UI)"] / medians["all versions (API JSON)"]
        print(f"collection page / API listing: {collection:.2f}")
        graph = medians["lineage graph (UI)"] / medians["runs that used it (API)"]
        print(f"lineage graph of {2 * args.lineage_runs + 1} nodes / API runs: {graph:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
