"""The web UI's lineage drawing, without a server: a sweep collapses and the layout keeps
data flowing left to right."""

from __future__ import annotations

from datetime import UTC, datetime

from soko.core.records import RunRecord, VersionRecord
from soko.server.ui import graph
from soko.service.browse import Neighbourhood

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LINKS = graph.Links(
    run=lambda r: f"/r/{r.id}",
    version=lambda v: f"/v/{v.id}",
    runs=lambda r: f"/runs?job_type={r.job_type}",
    collection=lambda v: f"/c/{v.collection}",
)


def run(run_id: str, job_type: str) -> RunRecord:
    return RunRecord(run_id, "e", "p", run_id, job_type, None, {}, "finished", NOW, NOW)


def version(version_id: str, collection: str, index: int = 0) -> VersionRecord:
    return VersionRecord(
        id=version_id,
        entity="e",
        project="p",
        collection=collection,
        type="t",
        version_index=index,
        state="COMMITTED",
        digest="d",
        algorithm="XXH128",
        manifest_blob=None,
        metadata={},
        description=None,
        size=0,
        file_count=0,
        ttl_seconds=None,
        aliases=[],
        tags=[],
        created_at=NOW,
        updated_at=NOW,
        committed_at=NOW,
        created_by_run=None,
    )


def sweep(size: int) -> Neighbourhood:
    """prep → data → ``size`` train runs → one model version each."""
    hood = Neighbourhood(start="version:data")
    hood.runs["prep"] = run("prep", "prep")
    hood.versions["data"] = version("data", "data")
    hood.edges.add(("run:prep", "version:data"))
    for i in range(size):
        hood.runs[f"t{i}"] = run(f"t{i}", "train")
        hood.versions[f"m{i}"] = version(f"m{i}", "model", i)
        hood.edges |= {("version:data", f"run:t{i}"), (f"run:t{i}", f"version:m{i}")}
    return hood


def test_a_sweep_of_200_runs_is_four_nodes() -> None:
    drawing = graph.draw(sweep(200), LINKS)
    labels = {n.label: n for n in drawing.nodes}
    assert set(labels) == {"prep", "data:v0", "200 runs", "200 versions of model"}
    assert labels["200 runs"].href == "/runs?job_type=train"
    assert labels["200 versions of model"].href == "/c/model"
    assert labels["data:v0"].start
    assert len(drawing.edges) == 3
    # Left to right, one layer each.
    order = ["prep", "data:v0", "200 runs", "200 versions of model"]
    xs = [labels[name].x for name in order]
    assert xs == sorted(xs) and len(set(xs)) == 4


def test_two_runs_alike_stay_apart() -> None:
    drawing = graph.draw(sweep(2), LINKS)
    assert {n.kind for n in drawing.nodes} == {"run", "version"}
    assert len(drawing.nodes) == 6
    # No two nodes overlap.
    boxes = {(round(n.x), round(n.y)) for n in drawing.nodes}
    assert len(boxes) == 6


def test_runs_of_other_inputs_or_job_types_do_not_collapse() -> None:
    hood = sweep(3)
    hood.runs["t0"] = run("t0", "evaluate")
    drawing = graph.draw(hood, LINKS)
    labels = {n.label for n in drawing.nodes}
    assert "t0" in labels and "2 runs" not in labels and "3 runs" not in labels
