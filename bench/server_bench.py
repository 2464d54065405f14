"""Log and download through a soko server vs the embedded store vs an MLflow server.

Run by hand (it writes ~10 GiB with the defaults and takes several minutes)::

    .venv/bin/python bench/server_bench.py [--workdir /tmp/soko-server-bench]
        [--small-count 20000] [--small-size 4096] [--large-gib 2] [--no-small] [--no-large]
        [--no-mlflow] [--mlflow-venv DIR] [--rounds 1] [--clean-page-cache]
        [--baseline-src DIR]

Workloads: ``small`` (20,000 files of 4 KiB) and ``large`` (one file of 2 GiB). Peers:

- ``embedded``: the SDK on a fresh embedded store (SOKO_DIR);
- ``server``: the SDK through ``soko server`` (SQLite + a blob folder) on a loopback port,
  the server on the same machine (so both share the 2 cores);
- ``mlflow``: ``mlflow server --serve-artifacts`` (proxied artifacts, SQLite backend) on a
  loopback port, ``mlflow.log_artifacts`` / ``mlflow.artifacts.download_artifacts``.
  MLflow is installed into its own virtualenv (``--mlflow-venv``, created with pip on first
  use) so that its pins never touch soko's environment;
- with ``--baseline-src DIR`` (the ``src`` folder of another checkout, e.g. a git worktree
  of an earlier commit): ``embedded@baseline`` and ``server@baseline``, the same steps with
  that code in the client and the server processes.

Each step runs in a fresh process with an empty client cache, and times only the log
(``Artifact`` + ``add_dir`` + ``log_artifact`` + ``wait``; for MLflow ``log_artifacts``)
or the download into a fresh folder. The output is a table of seconds and MB/s per peer and
the ratios the project aims for: server >= 50% of embedded throughput, server >= 10x MLflow
on small files; and the server/embedded ratio of each round (the two ran one after the
other), whose median holds when the disk switches between a fast and a slow pace.
Nothing here is asserted; docs/performance.md records the figures.
The peers run alternately, round after round, and every step's output is kept until the
end of the run (writing many files right after deleting many is much slower on some disks).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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

MLFLOW_LOG = textwrap.dedent(
    """
    import sys, time, mlflow
    folder, url = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(url)
    start = time.perf_counter()
    with mlflow.start_run() as run:
        mlflow.log_artifacts(folder, artifact_path="bench")
    print('RESULT', time.perf_counter() - start)
    print('RESULT', run.info.run_id)
    """
)

MLFLOW_DOWNLOAD = textwrap.dedent(
    """
    import sys, time, mlflow
    run_id, url, root = sys.argv[1], sys.argv[2], sys.argv[3]
    mlflow.set_tracking_uri(url)
    start = time.perf_counter()
    mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bench", dst_path=root)
    print('RESULT', time.perf_counter() - start)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server at {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


CLEAN_PAGE_CACHE = False
"""``--clean-page-cache``: see :func:`settle`."""
PREFAULT_GIB = 4


def settle(inputs: list[Path]) -> None:
    """Before a timed step: write back what earlier steps wrote; with CLEAN_PAGE_CACHE
    (root on Linux) also drop the page cache and read the step's *inputs* back in.

    This VM's writes run at two paces: at memory speed, or several times slower (4 s of
    system time to write 2 GiB against 0.33 s), whichever peer runs. The slow pace is the
    host: memory the guest frees is reported to it (virtio-balloon free page reporting)
    and taken back, and a step handed such pages pays a host fault on each. A clean page
    cache, warm inputs and a few GiB of memory touched just before the step give every
    peer the fast pace, run after run."""
    subprocess.run(["sync"], check=False)
    if not CLEAN_PAGE_CACHE:
        return
    Path("/proc/sys/vm/drop_caches").write_text("1\n")
    for top in inputs:
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for path in files:
            with open(path, "rb") as f:
                while f.read(8 * 1024 * 1024):
                    pass
    # Dropping the cache frees gigabytes, reported to the host a moment later; touching
    # them now has the host back them again before the step is handed them.
    touched = b"\x01" * (PREFAULT_GIB << 30)
    del touched


def run_timed(
    python: str,
    script: str,
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    inputs: list[Path],
) -> list[str]:
    """Run *script* after :func:`settle` of its *inputs*; returns what it printed on its
    ``RESULT`` lines (first: the seconds it measured). Other output (MLflow prints a line
    per run) is ignored."""
    cwd.mkdir(parents=True, exist_ok=True)
    settle(inputs)
    done = subprocess.run(
        [python, "-c", script, *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-4000:]}")
    return [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of process *pid* so far (Linux ``/proc``), or with None of this
    process's finished children: the step just run."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_small(folder: Path, count: int, size: int) -> None:
    if folder.exists() and len(os.listdir(folder)) == count:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"f{i:06d}.bin").write_bytes(os.urandom(size))


def make_large(folder: Path, size: int) -> None:
    target = folder / "large.bin"
    if target.exists() and target.stat().st_size == size:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        left = size
        block = os.urandom(64 * 1024 * 1024)
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            left -= len(piece)
            block = block[1:] + block[:1]  # not one repeated block, so nothing dedups


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


BASELINE_SRC: Path | None = None
"""``--baseline-src``: soko's code for the ``@baseline`` peers."""


def clean_env(baseline: bool) -> dict[str, str]:
    """This process's environment without soko's settings, importing soko from the
    baseline's code when *baseline*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    if baseline:
        assert BASELINE_SRC is not None
        env["PYTHONPATH"] = str(BASELINE_SRC)
    return env


def soko_env(
    base: Path, server_url: str | None, key: str | None, baseline: bool = False
) -> dict[str, str]:
    env = clean_env(baseline)
    env.update(SOKO_DIR=str(base / "soko"), SOKO_CACHE_DIR=str(base / "cache"), SOKO_SILENT="true")
    if server_url:
        env.update(SOKO_BASE_URL=server_url, SOKO_API_KEY=key or "")
    return env


def bench_soko(
    workdir: Path, data: Path, *, through_server: bool, baseline: bool = False
) -> tuple[float, float, str]:
    """Seconds of the log and of the download, and the CPU each step took."""
    base = Path(tempfile.mkdtemp(prefix="soko-", dir=workdir))
    server = None
    url = key = None
    try:
        if through_server:
            port = free_port()
            key = f"soko_bench_{secrets.token_urlsafe(32)}"
            server_env = clean_env(baseline)
            server_env.update(SOKO_DIR=str(base / "server"), SOKO_ADMIN_KEY=key)
            server = subprocess.Popen(
                [sys.executable, "-m", "soko.server", "--port", str(port)],
                env=server_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/api/v1/health", server)
        logger, reader = base / "logger", base / "reader"
        reader_env = soko_env(reader, url, key, baseline)
        if not through_server:
            reader_env["SOKO_DIR"] = str(logger / "soko")  # the store the log wrote
        store = base / "server" if through_server else logger / "soko"
        root = str(reader / "out")
        steps = {
            "log": (
                SOKO_LOG,
                [str(data), "bench"],
                soko_env(logger, url, key, baseline),
                logger,
                [data],
            ),
            "download": (SOKO_DOWNLOAD, ["bench", root], reader_env, reader, [store]),
        }
        seconds: list[float] = []
        cpu: list[str] = []
        for step, (script, args, env, cwd, inputs) in steps.items():
            client, served = cpu_seconds(), cpu_seconds(server.pid) if server else 0.0
            seconds.append(float(run_timed(sys.executable, script, args, env, cwd, inputs)[0]))
            used = f"{step} client {cpu_seconds() - client:.2f}"
            if server is not None:
                used += f" server {cpu_seconds(server.pid) - served:.2f}"
            # How busy the machine was: CPU seconds swell under load (caches, hand-offs).
            used += f" (load {os.getloadavg()[0]:.1f})"
            cpu.append(used)
        return seconds[0], seconds[1], "; ".join(cpu)
    finally:
        if server is not None:
            stop(server)


def mlflow_python(venv: Path) -> str:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing mlflow into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow"], check=True)
    return str(python)


def bench_mlflow(workdir: Path, data: Path, python: str) -> tuple[float, float, str]:
    base = Path(tempfile.mkdtemp(prefix="mlflow-run-", dir=workdir))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
        "--artifacts-destination", str(base / "artifacts"), "--serve-artifacts",
    ]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"{url}/health", server, timeout=300)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SOKO_", "MLFLOW_"))}
        lines = run_timed(python, MLFLOW_LOG, [str(data), url], env, base / "logger", [data])
        logged, run_id = float(lines[0]), lines[1]
        root = str(base / "reader" / "out")
        fetched = float(
            run_timed(
                python,
                MLFLOW_DOWNLOAD,
                [run_id, url, root],
                env,
                base / "reader",
                [base / "artifacts", base / "mlflow.db"],
            )[0]
        )
        return logged, fetched, ""
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/soko-server-bench")
    parser.add_argument("--small-count", type=int, default=20_000)
    parser.add_argument("--small-size", type=int, default=4096)
    parser.add_argument("--large-gib", type=float, default=2.0)
    parser.add_argument("--no-small", action="store_true")
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--mlflow-venv", default=None)
    parser.add_argument("--rounds", type=int, default=1, help="median of this many runs")
    parser.add_argument("--baseline-src", default=None, help="soko src folder to compare with")
    parser.add_argument(
        "--clean-page-cache",
        action="store_true",
        help="before each step drop the page cache and read its inputs back (root, Linux)",
    )
    args = parser.parse_args()
    global CLEAN_PAGE_CACHE, BASELINE_SRC
    CLEAN_PAGE_CACHE = args.clean_page_cache
    BASELINE_SRC = Path(args.baseline_src).resolve() if args.baseline_src else None
    if CLEAN_PAGE_CACHE and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        raise SystemExit("--clean-page-cache needs root on Linux (/proc/sys/vm/drop_caches).")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    workloads: dict[str, Path] = {}
    if not args.no_small:
        small = workdir / "data-small"
        make_small(small, args.small_count, args.small_size)
        workloads[f"small ({args.small_count} x {args.small_size} B)"] = small
    if not args.no_large:
        large = workdir / "data-large"
        make_large(large, int(args.large_gib * 1024**3))
        workloads[f"large (1 x {args.large_gib:g} GiB)"] = large
    python = None
    if not args.no_mlflow:
        python = mlflow_python(Path(args.mlflow_venv or workdir / "mlflow-venv"))

    results: dict[str, dict[str, tuple[float, float]]] = {}
    paired: dict[str, list[tuple[float, float]]] = {}
    for label, data in workloads.items():
        peers = {
            "embedded": lambda d=data: bench_soko(workdir, d, through_server=False),
            "server": lambda d=data: bench_soko(workdir, d, through_server=True),
        }
        if BASELINE_SRC is not None:
            peers["embedded@baseline"] = lambda d=data: bench_soko(
                workdir, d, through_server=False, baseline=True
            )
            peers["server@baseline"] = lambda d=data: bench_soko(
                workdir, d, through_server=True, baseline=True
            )
        if python is not None:
            peers["mlflow"] = lambda d=data: bench_mlflow(workdir, d, python)
        runs: dict[str, list[tuple[float, float]]] = {peer: [] for peer in peers}
        order = list(peers)
        for _ in range(args.rounds):
            for peer in order:
                logged, fetched, cpu = peers[peer]()
                runs[peer].append((logged, fetched))
                print(f"{label:32} {peer:9} log {logged:8.2f}s  download {fetched:8.2f}s",
                      flush=True)  # fmt: skip
                if cpu:
                    # Where the time goes: client + server CPU near twice the wall time
                    # (2 cores) says a step is bound by the processors, not the disk. The
                    # client's includes starting Python and importing soko (~0.5 s).
                    print(f"{'':42} cpu s: {cpu}", flush=True)
            order.reverse()  # alternate, so no peer always runs on the disk the other left
        results[label] = {
            peer: (statistics.median(r[0] for r in done), statistics.median(r[1] for r in done))
            for peer, done in runs.items()
        }
        paired[label] = [
            (e[0] / s[0], e[1] / s[1])
            for e, s in zip(runs["embedded"], runs["server"], strict=True)
        ]

    print()
    print("| workload | peer | log s | log MB/s | download s | download MB/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for label, peers_done in results.items():
        size = folder_bytes(workloads[label]) / 1e6
        for peer, (logged, fetched) in peers_done.items():
            print(f"| {label} | {peer} | {logged:.2f} | {size / logged:.1f} | {fetched:.2f} | "
                  f"{size / fetched:.1f} |")  # fmt: skip
    print()
    for label, peers_done in results.items():
        embedded, server = peers_done["embedded"], peers_done["server"]
        line = (f"{label}: server/embedded throughput: log {embedded[0] / server[0]:.0%}, "
                f"download {embedded[1] / server[1]:.0%}")  # fmt: skip
        if "mlflow" in peers_done:
            mlflow = peers_done["mlflow"]
            line += (f"; server vs MLflow: log {mlflow[0] / server[0]:.1f}x, "
                     f"download {mlflow[1] / server[1]:.1f}x")  # fmt: skip
        print(line)
        # The two peers of a round ran one after the other, on the disk in the same state;
        # the medians above may each come from another state when the disk changes pace.
        logs, downloads = [r[0] for r in paired[label]], [r[1] for r in paired[label]]
        print(f"{label}: same-round server/embedded: log median {statistics.median(logs):.0%} "
              f"({min(logs):.0%} to {max(logs):.0%}), download median "
              f"{statistics.median(downloads):.0%} ({min(downloads):.0%} to "
              f"{max(downloads):.0%})")  # fmt: skip
        for peer in ("embedded", "server"):
            if f"{peer}@baseline" in peers_done:
                now, before = peers_done[peer], peers_done[f"{peer}@baseline"]
                print(f"{label}: {peer} this/baseline seconds: log {now[0] / before[0]:.2f}, "
                      f"download {now[1] / before[1]:.2f}")  # fmt: skip
    print(json.dumps({k: {p: list(v) for p, v in d.items()} for k, d in results.items()}))
    # Only now: this VM writes many files much slower right after deleting many, so the
    # outputs of earlier steps stay until every step has run.
    for done in [*workdir.glob("soko-*"), *workdir.glob("mlflow-run-*")]:
        shutil.rmtree(done, ignore_errors=True)


if __name__ == "__main__":
    main()
