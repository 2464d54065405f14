"""Start-up cost: whole-process wall-clock time of short soko commands.

Measures, each in a fresh Python process:

- ``import``: ``python -c "import soko"``;
- ``help``: ``soko --help``;
- ``ls``: ``soko artifact ls PROJECT`` on an embedded store holding one artifact;
- ``init+finish``: a script doing ``soko.init()`` then ``run.finish()`` on that store;
- ``init+log+finish``: the same logging a new version of a one-file artifact in between
  (what the first ``log_artifact`` of a process costs on top);
- ``python``: ``python -c pass``, the interpreter's own floor.

With ``--baseline-src DIR`` (the ``src`` folder of another checkout, e.g. a git worktree of
an earlier commit), every command also runs with that code (``@baseline``), alternating
with this checkout's in the same run, so that both see the same load on the host. The
median of ``--repeat`` runs is printed per command, wall-clock and CPU (user + system: on
a loaded host the better guide), with the baseline's CPU median divided by this
checkout's. ``--importtime`` also prints the ten slowest imports (cumulative, from
``python -X importtime``) of each command with this checkout's code.

Both source folders are byte-compiled first (as an installed package is).

    python bench/startup_bench.py [--repeat 15] [--baseline-src DIR] [--importtime]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
CLI = "import sys; from soko.cli.main import main; sys.exit(main())"
INIT_FINISH = "import soko; run = soko.init(project='bench'); run.finish()"
# New content each time, so that every run commits a version (not a re-log of the last).
INIT_LOG_FINISH = (
    "import time, soko; run = soko.init(project='bench')\n"
    "artifact = soko.Artifact('logged', 'dataset')\n"
    "with artifact.new_file('a.txt') as f: f.write(str(time.time_ns()))\n"
    "run.log_artifact(artifact); run.finish()"
)

COMMANDS: dict[str, list[str]] = {
    "python": ["-c", "pass"],
    "import": ["-c", "import soko"],
    "help": ["-c", CLI, "--help"],
    "ls": ["-c", CLI, "artifact", "ls", "bench"],
    "init+finish": ["-c", INIT_FINISH],
    "init+log+finish": ["-c", INIT_LOG_FINISH],
}


def environment(src: Path, store: Path, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOKO_", "WANDB_"))}
    env.update(
        PYTHONPATH=str(src),
        SOKO_DIR=str(store),
        SOKO_CACHE_DIR=str(workdir / "cache"),
        SOKO_CONFIG_DIR=str(workdir / "config"),
        SOKO_SILENT="true",
    )
    return env


def run_once(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one run. On a loaded host the CPU
    time moves far less than the wall-clock time, which includes waiting for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{args} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def prepare_store(src: Path, workdir: Path) -> Path:
    """An embedded store with one artifact in project ``bench``, made with *src*'s code."""
    store = workdir / f"store-{abs(hash(str(src)))}"
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("alpha")
    env = environment(src, store, workdir)
    subprocess.run(
        [sys.executable, "-c", CLI, "artifact", "put", str(data), "--name", "bench/ds",
         "--type", "dataset"],
        env=env, cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    return store


def slowest_imports(args: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=env, cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    rows: list[tuple[int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        rows.append((int(cumulative), name))
    return [f"{us / 1000:8.1f} ms  {name}" for us, name in sorted(rows, reverse=True)[:10]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline-src", default=None, help="soko src folder to compare with")
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    peers = {"this": HERE_SRC}
    if args.baseline_src:
        peers["baseline"] = Path(args.baseline_src).resolve()
    for src in peers.values():
        # An installed package has its bytecode; a checkout run with
        # PYTHONDONTWRITEBYTECODE would compile every module at every start.
        compileall.compile_dir(src, quiet=1)
    with tempfile.TemporaryDirectory(prefix="soko-startup-") as tmp:
        workdir = Path(tmp)
        stores = {peer: prepare_store(src, workdir) for peer, src in peers.items()}
        envs = {p: environment(src, stores[p], workdir) for p, src in peers.items()}
        times: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for command, command_args in COMMANDS.items():
                for peer in peers:
                    key = (command, peer)
                    wall, cpu = run_once(command_args, envs[peer], workdir)
                    times.setdefault(key, []).append(wall)
                    cpus.setdefault(key, []).append(cpu)
        print(f"medians of {args.repeat} runs, seconds (load: {os.getloadavg()[0]:.1f})")
        header = f"{'command':<16} {'wall':>7} {'cpu':>7}"
        if "baseline" in peers:
            header += f" {'base wall':>10} {'base cpu':>9} {'cpu ratio':>10}"
        print(header)
        for command in COMMANDS:
            wall = statistics.median(times[(command, "this")])
            cpu = statistics.median(cpus[(command, "this")])
            line = f"{command:<16} {wall:7.3f} {cpu:7.3f}"
            if "baseline" in peers:
                base_wall = statistics.median(times[(command, "baseline")])
                base_cpu = statistics.median(cpus[(command, "baseline")])
                line += f" {base_wall:10.3f} {base_cpu:9.3f} {base_cpu / cpu:10.2f}"
            print(line)
        if args.importtime:
            for command, command_args in COMMANDS.items():
                print(f"\nslowest imports of {command} (cumulative):")
                print("\n".join(slowest_imports(command_args, envs["this"], workdir)))


if __name__ == "__main__":
    main()
