"""Runs and lineage on every backend: ``use_artifact`` records the input edge, a log the
output edge, and both read back through ``logged_by``/``used_by`` and the run's lists."""

from __future__ import annotations

import pytest
from backend_suite import Backend, write

import soko


def test_use_artifact_records_lineage_both_ways(backend: Backend) -> None:
    data = backend.log("data", {"a.txt": "a"}, job_type="prepare")
    write("m.h5", b"model")
    with soko.init(job_type="train", config={"lr": 0.1}) as run:
        used = run.use_artifact("data:latest")
        model = soko.Artifact("model", "model")
        model.add_file("m.h5")
        run.log_artifact(model)

    assert used.id == data.id
    assert [r.id for r in data.used_by()] == [run.id]
    assert data.logged_by().job_type == "prepare"
    assert model.logged_by().id == run.id
    public = soko.Api().run(run.id)
    assert (public.job_type, public.config, public.state) == ("train", {"lr": 0.1}, "finished")
    assert [a.qualified_name for a in public.used_artifacts()] == [used.qualified_name]
    assert [a.qualified_name for a in public.logged_artifacts()] == [model.qualified_name]
    assert model.used_by() == []


def test_use_artifact_of_a_draft_logs_it_first(backend: Backend) -> None:
    write("d.txt", "draft")
    draft = soko.Artifact("fresh", "dataset")
    draft.add_file("d.txt")
    with soko.init() as run:
        used = run.use_artifact(draft)
    assert used.version == "v0"
    assert [r.id for r in used.used_by()] == [run.id]
    assert used.logged_by().id == run.id


def test_a_run_used_as_a_context_manager_is_failed_by_an_exception(backend: Backend) -> None:
    with pytest.raises(RuntimeError, match="boom"), soko.init() as run:
        raise RuntimeError("boom")
    assert soko.Api().run(run.id).state == "failed"
    assert soko.run is None

    with soko.init() as ok:
        pass
    assert soko.Api().run(f"{backend.project}/{ok.id}").state == "finished"
    assert {r.id for r in soko.Api().runs()} == {run.id, ok.id}
