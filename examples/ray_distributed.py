"""W&B's distributed-artifact example, unchanged but for the import, on soko's embedded store.

Five writers, started in parallel with Ray, each add one table to one artifact with
``run.upsert_artifact``; a final run adds a ``PartitionedTable`` over their folder and
commits the version with ``run.finish_artifact``. Reading it back gives every writer's row.

Run it with ``python examples/ray_distributed.py [--writers N] [--workdir DIR]`` (needs
``pip install ray``). It starts a local Ray instance only, and keeps the store and the
cache under ``--workdir`` (default ./soko-ray-example/), so your home directory is left
alone. It prints the committed version and the rows, and exits non-zero if a row is
missing.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import uuid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=5, help="parallel writers (default 5)")
    parser.add_argument("--workdir", default="soko-ray-example", help="store and cache folder")
    parser.add_argument("--project", default="ray-example")
    args = parser.parse_args(argv)

    workdir = pathlib.Path(args.workdir).resolve()
    # Set before Ray starts: its worker processes inherit the environment, so the writers
    # and this driver use the same store.
    os.environ.setdefault("SOKO_DIR", str(workdir / "store"))
    os.environ.setdefault("SOKO_CACHE_DIR", str(workdir / "cache"))
    os.environ.setdefault("SOKO_PROJECT", args.project)
    os.environ.setdefault("SOKO_SILENT", "true")

    import ray

    import soko as wandb

    # Every writer and the finisher share one group: it is the default distributed id.
    group = f"ray_example-{uuid.uuid4().hex[:8]}"
    num_parallel = args.writers

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    @ray.remote
    def train(i: int) -> str:
        """Our writer job. Each writer will add one table to the artifact."""
        with wandb.init(group=group) as run:
            artifact = wandb.Artifact(name="raytest", type="dataset")
            # Add data to a table. In this case we use example data.
            table = wandb.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]])
            # Add the table to a folder in the artifact.
            artifact.add(table, "{}/table_{}".format("parts", i))
            # Upserting the artifact creates or appends data to the artifact.
            run.upsert_artifact(artifact)
        return str(run.id)

    try:
        # Launch the writers in parallel, then join on all of them so that their files
        # have been added before the artifact is finished.
        writer_ids = ray.get([train.remote(i) for i in range(num_parallel)])
    finally:
        ray.shutdown()

    # Once all the writers are done, finish the artifact to mark it ready.
    with wandb.init(group=group) as run:
        artifact = wandb.Artifact("raytest", type="dataset")
        # A PartitionedTable pointing at the folder of tables.
        artifact.add(wandb.data_types.PartitionedTable("parts"), "table")
        # finish_artifact commits the version; later upserts make the next one.
        run.finish_artifact(artifact)

    with wandb.init(job_type="read") as run:
        committed = run.use_artifact("raytest:latest")
        rows = sorted(list(row) for row in committed.get("table"))

    expected = sorted([i, i * 2, 2**i] for i in range(num_parallel))
    print(f"writers  {len(writer_ids)} runs: {', '.join(sorted(writer_ids))}")
    print(f"version  {committed.qualified_name}  {committed.file_count} files")
    print(f"rows     {rows}")
    if rows != expected:
        print(f"expected {expected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
