"""The ``wandb`` client through soko server's W&B endpoint vs soko's own client, same server.

Run by hand::

    .venv/bin/python bench/wandb_client_bench.py [--workdir /tmp/soko-wandb-bench]
        [--small-count 20000] [--small-size 4096] [--large-mib 2048] [--no-small]
        [--no-large] [--rounds 3]

Workloads: ``small`` (20,000 files of 4 KiB) and ``large`` (one file of 2 GiB by default).
One ``soko server`` (SQLite + a blob folder) on a loopback port serves both peers:

- ``wandb``: ``wandb==0.31`` with ``WANDB_BASE_URL``/``WANDB_API_KEY`` pointing at the
  server: ``wandb.init`` + ``Artifact.add_dir`` + ``log_artifact`` + ``wait`` (into a
  project of its own each round, so every blob is uploaded), then
  ``Api().artifact(...).download()`` into a fresh folder;
- ``soko``: soko's SDK with ``SOKO_BASE_URL``/``SOKO_API_KEY``, the same steps.

Each step is a fresh process with an empty client cache; the wall time printed is measured
inside it, around the log (init to wait) or the download only, so the client's import
time is not counted. CPU is the whole step's: the client's process and its children
(wandb's ``wandb-core``) plus the server's, which on a loaded machine says more than the
wall time. The peers alternate, round after round; the table gives medians and the
wandb/soko ratios of medians. Nothing is asserted; docs/performance.md records figures.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from server_bench import (
    cpu_seconds,
    free_port,
    make_large,
    make_small,
    run_timed,
    stop,
    wait_http,
)

Step = tuple[float, float]
"""Wall seconds measured inside the step, CPU seconds of client and server."""

WANDB_LOG = textwrap.dedent(
    """
    import sys, time, wandb
    folder, project = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    run = wandb.init(project=project)
    artifact = wandb.Artifact("bench", "dataset")
    artifact.add_dir(folder)
    run.log_artifact(artifact)
    artifact.wait()
    run.finish()
    print('RESULT', time.perf_counter() - start)
    """
)

WANDB_DOWNLOAD = textwrap.dedent(
    """
    import sys, time, wandb
    project, root = sys.argv[1], sys.argv[2]
    artifact = wandb.Api().artifact(f"{project}/bench:latest")
    start = time.perf_counter()
    artifact.download(root=root)
    print('RESULT', time.perf_counter() - start)
    """
)

SOKO_LOG = textwrap.dedent(
    """
    import sys, time, soko
    folder, project = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    with soko.init(project=project) as run:
        artifact = soko.Artifact("bench", "dataset")
        artifact.add_dir(folder)
        run.log_artifact(artifact).wait()
    print('RESULT', time.perf_counter() - start)
    """
)

SOKO_DOWNLOAD = textwrap.dedent(
    """
    import sys, time, soko
    project, root = sys.argv[1], sys.argv[2]
    artifact = soko.Api().artifact(f"{project}/bench:latest")
    start = time.perf_counter()
    artifact.download(root)
    print('RESULT', time.perf_counter() - start)
    """
)


def peer_env(peer: str, url: str, key: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOKO_", "WANDB_"))}
    home.mkdir(parents=True, exist_ok=True)
    if peer == "wandb":
        (home / "runs").mkdir(exist_ok=True)
        env.update(
            WANDB_BASE_URL=url,
            WANDB_API_KEY=key,
            WANDB_MODE="online",
            WANDB_SILENT="true",
            WANDB_ENTITY="admin",
            WANDB_DIR=str(home / "runs"),
            WANDB_CACHE_DIR=str(home / "cache"),
            WANDB_CONFIG_DIR=str(home / "config"),
            WANDB_DATA_DIR=str(home / "data"),
        )
    else:
        env.update(
            SOKO_BASE_URL=url,
            SOKO_API_KEY=key,
            SOKO_ENTITY="admin",
            SOKO_DIR=str(home / "soko"),
            SOKO_CACHE_DIR=str(home / "cache"),
            SOKO_CONFIG_DIR=str(home / "config"),
        )
    return env


def _step(
    script: str, args: list[str], env: dict[str, str], work: Path, server: int, inputs: list[Path]
) -> Step:
    client, served = cpu_seconds(), cpu_seconds(server)
    wall = float(run_timed(sys.executable, script, args, env, work, inputs)[0])
    return wall, cpu_seconds() - client + cpu_seconds(server) - served


def one_round(
    peer: str, data: Path, work: Path, url: str, key: str, server: int
) -> tuple[Step, Step]:
    project = f"{peer}-{secrets.token_hex(4)}"
    log, download = (WANDB_LOG, WANDB_DOWNLOAD) if peer == "wandb" else (SOKO_LOG, SOKO_DOWNLOAD)
    env = peer_env(peer, url, key, work / "home-log")
    logged = _step(log, [str(data), project], env, work, server, [data])
    # A home of its own: the log left the files in its client's cache, which a download
    # with that cache would copy instead of fetching.
    env = peer_env(peer, url, key, work / "home-download")
    fetched = _step(download, [project, str(work / "out")], env, work, server, [])
    shutil.rmtree(work / "out", ignore_errors=True)
    return logged, fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--small-count", type=int, default=20_000)
    parser.add_argument("--small-size", type=int, default=4096)
    parser.add_argument("--large-mib", type=int, default=2048)
    parser.add_argument("--no-small", action="store_true")
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="soko-wandb-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workloads: dict[str, Path] = {}
    if not options.no_small:
        workloads["small"] = workdir / "data-small"
        make_small(workloads["small"], options.small_count, options.small_size)
    if not options.no_large:
        workloads["large"] = workdir / "data-large"
        make_large(workloads["large"], options.large_mib * 1024 * 1024)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key = f"soko_bench_{secrets.token_hex(24)}"
    server_root = workdir / "server"
    shutil.rmtree(server_root, ignore_errors=True)
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    server_env.update(SOKO_DIR=str(server_root), SOKO_ADMIN_KEY=key)
    server = subprocess.Popen(
        [sys.executable, "-m", "soko.server", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"{url}/api/v1/health", server)
        print(f"load average at start: {os.getloadavg()}")
        print(
            f"{'workload':<8} {'peer':<6} {'log s':>8} {'log cpu s':>10} "
            f"{'download s':>11} {'download cpu s':>15}   (medians)"
        )
        for name, data in workloads.items():
            times: dict[str, list[tuple[Step, Step]]] = {"wandb": [], "soko": []}
            for index in range(options.rounds):
                for peer in ("wandb", "soko") if index % 2 == 0 else ("soko", "wandb"):
                    work = workdir / "steps" / f"{name}-{peer}-{index}"
                    times[peer].append(one_round(peer, data, work, url, key, server.pid))
            medians = {
                peer: [
                    statistics.median(r[step][part] for r in runs)
                    for step in (0, 1)
                    for part in (0, 1)
                ]
                for peer, runs in times.items()
            }
            for peer, (log_wall, log_cpu, get_wall, get_cpu) in medians.items():
                print(
                    f"{name:<8} {peer:<6} {log_wall:>8.2f} {log_cpu:>10.2f} "
                    f"{get_wall:>11.2f} {get_cpu:>15.2f}"
                )
            ratios = [w / s for w, s in zip(medians["wandb"], medians["soko"], strict=True)]
            print(
                f"{name:<8} wandb/soko: log {ratios[0]:.2f}x wall, {ratios[1]:.2f}x cpu; "
                f"download {ratios[2]:.2f}x wall, {ratios[3]:.2f}x cpu"
            )
        print(f"load average at end: {os.getloadavg()}")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
