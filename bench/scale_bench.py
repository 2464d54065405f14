"""Scale benchmark: a folder of many small files logged, re-logged and downloaded, each
step a whole process, beside ``cp -r`` of the same folder.

The data: N files of 1 KiB in N/1000 folders (ImageNet's shape: a million small files).
Each repetition, in alternating order:

- soko log: a process that runs ``init`` + ``Artifact`` + ``add_dir`` + ``log_artifact`` +
  ``wait`` + ``finish`` into a fresh store (cold stat cache);
- soko re-log: the same again, the folder unchanged;
- soko download: a process that downloads ``data:latest`` into an empty folder;
- cp: ``cp -r`` of the data folder.

Each step's wall-clock seconds and peak RSS (``ru_maxrss`` of that child, from ``wait4``)
are printed as medians, with the ratios to ``cp -r``. With ``--server`` the same steps run
through ``soko server`` (SQLite + a blob folder, on a loopback port, on the same machine);
the server's peak RSS is its ``VmHWM``. With ``--baseline-src DIR`` (the ``src`` folder of
another checkout) the soko steps also run with that code, alternating with this
checkout's. With ``--wandb N``, wandb's draft build (``add_dir``, offline) of the first N
folders' files is timed too (its full run would take too long).

    python bench/scale_bench.py --files 100000 [--repeat 3] [--workdir DIR] [--server]
        [--baseline-src DIR] [--wandb 100000] [--no-embedded]

With ``--version-ops`` it times instead what reads or extends one version of ``--files``
files on the embedded store (each side's store made by that side's code through the
service, 1 KiB blobs in packs, 1,000 files a folder, without files on disk): the first 50
of ``files()``; ``download(path_prefix=...)`` of one folder of 1,000 files into an empty
folder; ``new_draft()`` + ``add_dir`` of 1,000 new files + ``log_artifact`` + ``wait``
(inside ``init``/``finish``). Each step is a fresh process; the wall-clock and CPU seconds
printed are the step's own (from the version resolved, modules imported and store opened,
to the step done), beside the whole process's peak RSS.

    python bench/scale_bench.py --version-ops --files 100000 --repeat 3 --baseline-src DIR

With ``--server`` too, the version is made in the store of a ``soko server`` (one per
side) and the steps run through it; the servers' peak RSS is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

FILE_SIZE = 1024
PER_FOLDER = 1000
THIS_SRC = Path(__file__).resolve().parents[1] / "src"

LOG = """
import sys, soko
with soko.init(project="bench") as run:
    artifact = soko.Artifact("data", "dataset")
    artifact.add_dir(sys.argv[1])
    run.log_artifact(artifact).wait()
"""
DOWNLOAD = """
import sys, soko
with soko.init(project="bench") as run:
    run.use_artifact("data:latest").download(root=sys.argv[1])
"""
WARM_UP = """
import soko
with soko.init(project="warm-up"):
    pass
"""
WANDB_BUILD = """
import sys, time, wandb
start = time.perf_counter()
artifact = wandb.Artifact("data", "dataset")
for folder in sys.argv[1:]:
    artifact.add_dir(folder, name=folder.rsplit("/", 1)[-1])
print(time.perf_counter() - start)
"""


MAKE_VERSION = """
import os, sys
from pathlib import Path
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.service.commit import commit_version
from soko.service.store import Store
store = Store.open_local(Path(sys.argv[1]))
count, per_folder = int(sys.argv[2]), int(sys.argv[3])
block = os.urandom(1024)
entries, batch = [], []
for i in range(count):
    data = i.to_bytes(8, "little") + block[8:]
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    batch.append((digest, data))
    entries.append(Entry(path=f"d{i // per_folder:04}/f{i:07}.bin", digest=digest.b64,
                         size=len(data), extra={"alg": "xxh128"}))
    if len(batch) == 16384:
        store.blobs.put_blobs(batch)
        batch = []
store.blobs.put_blobs(batch)
manifest = Manifest.of(entries, Algorithm.XXH128)
commit_version(store, CommitRequest(entity=sys.argv[4], project="bench", name="data",
                                    type="dataset", manifest=manifest))
"""
# Each prints the wall-clock and CPU seconds of its step alone: from the version resolved
# (the store opened, the modules imported) to the step done.
FILES_FIRST = """
import sys, time, soko
artifact = soko.Api().artifact(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
files = artifact.files(per_page=50)
first = [files[i].path for i in range(50)]
print(time.perf_counter() - wall, time.process_time() - cpu)
"""
PREFIX_DOWNLOAD = """
import sys, time, soko
artifact = soko.Api().artifact(sys.argv[3])
wall, cpu = time.perf_counter(), time.process_time()
artifact.download(root=sys.argv[1], path_prefix=sys.argv[2])
print(time.perf_counter() - wall, time.process_time() - cpu)
"""
NEW_DRAFT = """
import sys, time, soko
with soko.init(project="bench") as run:
    artifact = run.use_artifact("data:latest")
    wall, cpu = time.perf_counter(), time.process_time()
    draft = artifact.new_draft()
    draft.add_dir(sys.argv[1], name=sys.argv[2])
    run.log_artifact(draft).wait()
    print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def make_data(root: Path, count: int) -> None:
    """*count* files of 1 KiB of distinct random bytes, 1,000 to a folder."""
    marker = root / ".complete"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    block = os.urandom(FILE_SIZE)
    for i in range(count):
        if i % PER_FOLDER == 0:
            folder = root / f"d{i // PER_FOLDER:04}"
            folder.mkdir(parents=True)
        # Distinct content per file, cheaply: the file's number over the first bytes.
        fd = os.open(folder / f"f{i:07}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, i.to_bytes(8, "little") + block[8:])
        finally:
            os.close(fd)
    marker.touch()


def run_child(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Seconds, peak RSS (MiB) and CPU seconds (user + system) of one child process."""
    subprocess.run(["sync"], check=True)  # what earlier steps wrote is not this step's
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{argv[:3]} exited with {process.returncode}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # KiB on Linux


def run_timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """The wall-clock and CPU seconds a child prints (its step's own), its peak RSS (MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    printed = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{argv[:3]} exited with {status} after {time.perf_counter() - start}")
    wall, cpu = printed.split()[-2:]
    return float(wall), float(cpu), usage.ru_maxrss / 1024


def version_ops(args: argparse.Namespace, codes: dict[str, Path], work: Path) -> None:
    """``--version-ops``: files(), download(path_prefix) and new_draft on one version."""
    servers: dict[str, Server] = {}
    try:
        _version_ops(args, codes, work, servers)
    finally:
        for server in servers.values():
            server.stop()


def _version_ops(
    args: argparse.Namespace, codes: dict[str, Path], work: Path, servers: dict[str, Server]
) -> None:
    adds = work / "adds-1000"
    if not (adds / ".complete").exists():
        shutil.rmtree(adds, ignore_errors=True)
        adds.mkdir(parents=True)
        for i in range(1000):
            (adds / f"n{i:04}.bin").write_bytes(os.urandom(FILE_SIZE))
        (adds / ".complete").touch()
    python = sys.executable
    stores: dict[str, dict[str, str]] = {}
    entity = "local"  # the SDK's default, through a server too
    version = f"{entity}/bench/data:latest"
    for name, src in codes.items():
        base = work / f"ops-{name}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        env = clean_env(src)
        env.update(SOKO_DIR=str(base / "soko"), SOKO_CACHE_DIR=str(base / "cache"))
        store = base / "soko"
        if args.server:
            server = servers[name] = Server(src, base)
            env.update(SOKO_BASE_URL=server.url, SOKO_API_KEY=server.key)
            store = base / "server" / "server"  # $SOKO_DIR/server
        start = time.perf_counter()
        subprocess.run(
            [python, "-c", MAKE_VERSION, str(store), str(args.files), str(PER_FOLDER), entity],
            env=env,
            check=True,
        )
        print(f"{name}: a version of {args.files:,} files in {time.perf_counter() - start:.1f} s")
        stores[name] = env
    folder = f"d{args.files // PER_FOLDER // 2:04}/"
    results: dict[str, dict[str, list[tuple[float, float, float]]]] = {n: {} for n in codes}
    for round_no in range(args.repeat):
        order = list(codes) if round_no % 2 == 0 else list(reversed(codes))
        for name in order:
            env, base = stores[name], work / f"ops-{name}"
            out = base / "out"
            shutil.rmtree(out, ignore_errors=True)
            steps = {
                "files() first 50": [python, "-c", FILES_FIRST, version],
                f"download path_prefix {folder}": [
                    python,
                    "-c",
                    PREFIX_DOWNLOAD,
                    str(out),
                    folder,
                    version,
                ],
                "new_draft + 1,000 files + log": [
                    python,
                    "-c",
                    NEW_DRAFT,
                    str(adds),
                    f"new-{round_no}",
                ],
            }
            for step, argv in steps.items():
                subprocess.run(["sync"], check=True)
                server = servers.get(name)
                served = server.cpu_seconds() if server else 0.0
                got = run_timed(argv, env, base)
                results[name].setdefault(step, []).append(got)
                print(
                    f"round {round_no + 1}: {name} {step}: {got[0]:.3f} s, CPU {got[1]:.3f} s, "
                    f"{got[2]:.0f} MiB"
                    + (f", server CPU {server.cpu_seconds() - served:.3f} s" if server else "")
                )
    for name, server in servers.items():
        print(f"{name}: server peak RSS {server.peak_mib():.0f} MiB")
    where = "through a server" if args.server else "embedded"
    print(
        f"\nversion of {args.files:,} files, {where}, medians of {args.repeat} "
        f"(load {os.getloadavg()})"
    )
    heads = " | ".join(f"{n} s | {n} CPU s | {n} MiB" for n in codes)
    print(f"| step | {heads} | this/baseline, CPU |")
    print("| --- |" + " ---: | ---: | ---: |" * len(codes) + " ---: |")
    for step in results["this"]:
        cells, cpus = [], []
        for name in codes:
            values = results[name][step]
            wall = statistics.median(v[0] for v in values)
            cpus.append(statistics.median(v[1] for v in values))
            mib = statistics.median(v[2] for v in values)
            cells.append(f"{wall:.3f} | {cpus[-1]:.3f} | {mib:.0f}")
        ratio = f"{cpus[0] / cpus[1]:.3f}" if len(cpus) > 1 else "-"
        print(f"| {step} | " + " | ".join(cells) + f" | {ratio} |")


def clean_env(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env.update(PYTHONPATH=str(src), SOKO_SILENT="true")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``soko server`` on a loopback port, with its own store under *base*."""

    def __init__(self, src: Path, base: Path) -> None:
        self.key = f"soko_bench_{secrets.token_urlsafe(32)}"
        port = free_port()
        env = clean_env(src)
        env.update(SOKO_DIR=str(base / "server"), SOKO_ADMIN_KEY=self.key)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "soko.server", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        self._wait()

    def _wait(self) -> None:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.url}/api/v1/health", timeout=2.0)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise SystemExit("server did not start")

    def peak_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """The server's user + system CPU seconds so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def soko_round(src: Path, data: Path, base: Path, *, through_server: bool) -> dict[str, float]:
    """log, re-log and download (seconds and peak MiB) with the code at *src*."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    server = Server(src, base) if through_server else None
    try:
        env = clean_env(src)
        env.update(SOKO_DIR=str(base / "soko"), SOKO_CACHE_DIR=str(base / "cache"))
        if server is not None:
            env.update(SOKO_BASE_URL=server.url, SOKO_API_KEY=server.key)
        reader = dict(env, SOKO_CACHE_DIR=str(base / "reader-cache"))
        python = sys.executable
        run_child([python, "-c", WARM_UP], env, base)  # the store exists before the clock
        out: dict[str, float] = {}
        for step, script, args, step_env in (
            ("log", LOG, [str(data)], env),
            ("relog", LOG, [str(data)], env),
            ("download", DOWNLOAD, [str(base / "out")], reader),
        ):
            out[step], out[f"{step}_mib"], out[f"{step}_cpu"] = run_child(
                [python, "-c", script, *args], step_env, base
            )
        if server is not None:
            out["server_mib"] = server.peak_mib()
        return out
    finally:
        if server is not None:
            server.stop()


def cp_round(data: Path, dest: Path) -> tuple[float, float]:
    """Seconds and CPU seconds of ``cp -r``."""
    shutil.rmtree(dest, ignore_errors=True)
    seconds, _, cpu = run_child(["cp", "-r", str(data), str(dest)], dict(os.environ), dest.parent)
    return seconds, cpu


def wandb_build(data: Path, files: int) -> tuple[float, float]:
    folders = sorted(str(p) for p in data.iterdir() if p.is_dir())[: -(-files // PER_FOLDER)]
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    seconds, mib, _ = run_child([sys.executable, "-c", WANDB_BUILD, *folders], env, data.parent)
    shutil.rmtree(Path.home() / ".local/share/wandb/artifacts/staging", ignore_errors=True)
    return seconds, mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/soko-scale-bench")
    parser.add_argument("--server", action="store_true", help="also through soko server")
    parser.add_argument("--no-embedded", action="store_true")
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src folder")
    parser.add_argument("--wandb", type=int, default=0, help="wandb's build of this many files")
    parser.add_argument("--version-ops", action="store_true", help="see the module")
    args = parser.parse_args()

    work = Path(args.workdir)
    if args.version_ops:
        codes = {"this": THIS_SRC}
        if args.baseline_src:
            codes["baseline"] = args.baseline_src.resolve()
        version_ops(args, codes, work)
        return
    data = work / f"data-{args.files}"
    print(f"making {args.files:,} files of 1 KiB in {data} ...", flush=True)
    make_data(data, args.files)

    codes = {"this": THIS_SRC}
    if args.baseline_src:
        codes["baseline"] = args.baseline_src.resolve()
    peers = [("embedded", False)] if not args.no_embedded else []
    if args.server:
        peers.append(("server", True))
    results: dict[str, list[dict[str, float]]] = {}
    cp: list[float] = []
    cp_cpu: list[float] = []
    wandb: list[tuple[float, float]] = []
    for round_no in range(args.repeat):
        order = list(codes.items()) if round_no % 2 == 0 else list(reversed(codes.items()))
        seconds, cpu = cp_round(data, work / "cp-out")
        cp.append(seconds)
        cp_cpu.append(cpu)
        print(f"round {round_no + 1}: cp -r {seconds:.2f} s, CPU {cpu:.2f} s", flush=True)
        for name, src in order:
            for peer, through_server in peers:
                key = f"{peer}@{name}"
                got = soko_round(src, data, work / f"run-{key}", through_server=through_server)
                results.setdefault(key, []).append(got)
                print(f"round {round_no + 1}: {key} {got}", flush=True)
        if args.wandb:
            wandb.append(wandb_build(data, args.wandb))
            print(f"round {round_no + 1}: wandb build {wandb[-1]}", flush=True)
        shutil.rmtree(work / "cp-out", ignore_errors=True)
    for key in results:
        shutil.rmtree(work / f"run-{key}", ignore_errors=True)

    cp_s = statistics.median(cp)
    print(
        f"\n{args.files:,} x 1 KiB, medians of {args.repeat}; cp -r {cp_s:.2f} s, "
        f"CPU {statistics.median(cp_cpu):.2f} s; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "| run | log s | /cp | CPU s | MiB | re-log s | CPU s | MiB | download s | /cp | CPU s "
        "| MiB | server MiB |"
    )
    print("| --- |" + " ---: |" * 12)
    for key, rounds in results.items():

        def med(field: str, rounds: list[dict[str, float]] = rounds) -> float:
            return statistics.median(r.get(field, 0.0) for r in rounds)

        print(
            f"| {key} | {med('log'):.2f} | {med('log') / cp_s:.2f} | {med('log_cpu'):.2f} "
            f"| {med('log_mib'):.0f} | {med('relog'):.2f} | {med('relog_cpu'):.2f} "
            f"| {med('relog_mib'):.0f} | {med('download'):.2f} | {med('download') / cp_s:.2f} "
            f"| {med('download_cpu'):.2f} | {med('download_mib'):.0f} | {med('server_mib'):.0f} |"
        )
    if wandb:
        seconds = statistics.median(s for s, _ in wandb)
        mib = statistics.median(m for _, m in wandb)
        print(f"wandb draft build of {args.wandb:,} files: {seconds:.2f} s, {mib:.0f} MiB")


if __name__ == "__main__":
    main()
