"""Many clients at once through ``soko server`` on PostgreSQL: throughput, latency, errors.

Run by hand (loopback only; a bounded number of requests; a few minutes)::

    .venv/bin/python bench/load_bench.py [--clients 32] [--rounds 4] [--workers 1 2]
        [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--workdir DIR]

For each ``--workers`` value (alternating, ``--repeats`` times), a fresh PostgreSQL database
(created here, dropped at the end) and a blob folder, ``soko server --workers N`` on a free
loopback port, and ``--clients`` client processes. Each client does a warm-up round (not
counted: it imports what a log and a download use), waits until every client is ready, then
does ``--rounds`` times: log a small artifact (three files of a few hundred bytes, one of
them its own) in a run, then download it into a fresh folder with an empty cache and check
its bytes. The table gives per operation the count, errors, p50 and p99 latency, the
operations per second over the wall time, and where the CPU went: the server's processes,
the clients', PostgreSQL's (every ``postgres`` process: the whole cluster, other users'
databases included) and the rest of the machine (whatever else runs), from ``/proc``.
Nothing is asserted; docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

CLIENT = textwrap.dedent(
    """
    import json, os, sys, time
    import soko
    client, project, rounds, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    def log(index):
        folder = os.path.join(root, f"in-{index}")
        os.makedirs(folder)
        for name, text in (("own.txt", f"{client} {index}"), ("a.txt", "a" * 300),
                           ("b.json", '{"b": 1}')):
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        with soko.init(project=project) as run:
            artifact = soko.Artifact(f"data-{client}", "dataset")
            artifact.add_dir(folder)
            run.log_artifact(artifact).wait()

    def download(index):
        got = soko.Api().artifact(f"{project}/data-{client}:v{index}").download(
            os.path.join(root, f"out-{index}"))
        with open(os.path.join(got, "own.txt")) as f:
            if f.read() != f"{client} {index}":
                raise AssertionError("wrong bytes")

    def timed(op, function, index):
        start = time.perf_counter()
        try:
            function(index)
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"op": op, "s": time.perf_counter() - start, "error": error}),
              flush=True)
        return error is None

    # A warm-up round, not counted: the modules a log and a download import on first use.
    log(0)
    download(0)
    print("READY", flush=True)
    sys.stdin.readline()  # everyone warmed up: go
    for index in range(1, rounds + 1):
        if timed("log", log, index):
            timed("download", download, index)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_cpu(pid: int) -> float:
    """CPU seconds of *pid* and its live descendants (uvicorn's worker processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def postgres_cpu() -> float:
    """CPU seconds of every live ``postgres`` process (the cluster, all its databases)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if comm == "postgres":
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def machine_cpu() -> float:
    """CPU seconds the whole machine spent busy (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def pg_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def run_once(args: argparse.Namespace, workers: int, workdir: Path) -> dict[str, object]:
    import httpx

    name = f"soko_load_{uuid.uuid4().hex[:10]}"
    pg_execute(args.pg_url, f'CREATE DATABASE "{name}"')
    db_url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
    root = workdir / f"w{workers}-{name}"
    root.mkdir(parents=True)
    key = f"soko_load_{secrets.token_urlsafe(24)}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Byte-code cached as an installed soko has it: compiling every module in every
    # client process would be most of what the clients spend.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SOKO_") and k != "PYTHONDONTWRITEBYTECODE"}  # fmt: skip
    server_log = (root / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "soko.server", "--host", "127.0.0.1", "--port", str(port),
         "--db", db_url, "--store", str(root / "blobs"), "--workers", str(workers)],
        env={**env, "SOKO_DIR": str(root / "soko"), "SOKO_ADMIN_KEY": key},
        stdout=server_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    clients: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/api/v1/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: see {root / 'server.log'}")
            time.sleep(0.1)
        project = f"load-{uuid.uuid4().hex[:8]}"
        for index in range(args.clients):
            home = root / f"client-{index}"
            home.mkdir()
            clients.append(
                subprocess.Popen(
                    [sys.executable, "-c", CLIENT, f"c{index}", project, str(args.rounds),
                     str(home)],
                    env={**env, "SOKO_BASE_URL": url, "SOKO_API_KEY": key,
                         "SOKO_DIR": str(home / "soko"), "SOKO_CACHE_DIR": str(home / "cache")},
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, cwd=home,
                )
            )  # fmt: skip
        # Every client has imported what it needs (a warm-up round) before any starts:
        # imports cost a client seconds of CPU, which would be counted as latency.
        for client in clients:
            assert client.stdout is not None
            if client.stdout.readline().strip() != "READY":
                raise SystemExit(f"a client failed to start: {client.communicate()[1][-2000:]}")
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before, machine_before = proc_cpu(server.pid), machine_cpu()
        pg_before = postgres_cpu()
        start = time.perf_counter()
        for client in clients:
            assert client.stdin is not None
            client.stdin.write("go\n")
            client.stdin.flush()
        outputs = [client.communicate(timeout=1800) for client in clients]
        wall = time.perf_counter() - start
        server_cpu = proc_cpu(server.pid) - server_before
        machine = machine_cpu() - machine_before
        pg = postgres_cpu() - pg_before
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
        server.terminate()
        server.wait(timeout=30)
        server_log.close()
        pg_execute(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    client_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    events = [json.loads(line) for out, _ in outputs for line in out.splitlines() if line]
    crashed = [err[-500:] for client, (_, err) in zip(clients, outputs, strict=True)
               if client.returncode != 0]  # fmt: skip
    return {
        "workers": workers,
        "wall": wall,
        "events": events,
        "crashed": crashed,
        "cpu": {"server": server_cpu, "clients": client_cpu, "postgres": pg,
                "rest": max(machine - server_cpu - client_cpu - pg, 0.0), "machine": machine},
    }  # fmt: skip


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="soko-load-"))
    results: list[dict[str, object]] = []
    try:
        for _ in range(args.repeats):
            for workers in args.workers:
                results.append(run_once(args, workers, workdir))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"{args.clients} clients x {args.rounds} rounds (log + download), "
          f"{os.cpu_count()} cores, PostgreSQL + blob folder, loopback")  # fmt: skip
    header = (
        f"{'workers':>7} {'op':>9} {'count':>5} {'errors':>6} {'p50 s':>7} {'p99 s':>7} "
        f"{'ops/s':>6} | {'wall s':>6} {'cpu srv':>7} {'clients':>7} {'pg':>6} {'other':>6}"
    )
    print(header)
    by_workers: dict[int, list[float]] = {}
    for result in results:
        events = result["events"]
        assert isinstance(events, list)
        wall = float(result["wall"])  # type: ignore[arg-type]
        cpu = result["cpu"]
        assert isinstance(cpu, dict)
        workers = int(result["workers"])  # type: ignore[call-overload]
        by_workers.setdefault(workers, []).append(len(events) / wall)
        for op in ("log", "download"):
            mine = [e for e in events if e["op"] == op]
            ok = [e["s"] for e in mine if not e["error"]]
            errors = len(mine) - len(ok)
            print(
                f"{workers:>7} {op:>9} {len(mine):>5} {errors:>6} {quantile(ok, 0.5):>7.3f} "
                f"{quantile(ok, 0.99):>7.3f} {len(mine) / wall:>6.1f} | {wall:>6.1f} "
                f"{cpu['server']:>7.1f} {cpu['clients']:>7.1f} {cpu['postgres']:>6.1f} "
                f"{cpu['rest']:>6.1f}"
            )
        for event in events:
            if event["error"]:
                print(f"        error: {event['error'][:200]}")
        for crash in result["crashed"]:  # type: ignore[attr-defined]
            print(f"        a client crashed: {crash}")
    if len(by_workers) > 1:
        base = min(by_workers)
        for workers, rates in sorted(by_workers.items()):
            if workers == base:
                continue
            ratio = statistics.median(rates) / statistics.median(by_workers[base])
            print(f"operations/s with {workers} workers vs {base}: x{ratio:.2f}")


if __name__ == "__main__":
    main()
