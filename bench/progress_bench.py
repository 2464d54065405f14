"""What progress bars cost: ``soko artifact put`` and ``get`` of one large file with a bar
drawn on a terminal, against the same without a terminal, and against another checkout.

Each command runs in a child process on a fresh embedded store and a fresh cache (a cold
stat cache: the put hashes and copies every byte). "tty" runs have stdin, stdout and
stderr on a pseudo-terminal, so the bars are drawn (and read back by this process, as a
terminal would); "pipe" runs have none, so no bar is drawn. The variants alternate within
each repetition; medians are printed, with the ratios of this checkout to the baseline.

    python bench/progress_bench.py [--size-mib 1024] [--repeat 3] [--workdir DIR]
        [--baseline-src DIR] [--calls-only]

It first prints what one report costs on this machine's CPU, which a loaded host disturbs
far less than whole commands: :func:`soko.core.metering.count` with no meter and with one
feeding a drawn bar, per call, against the chunks a GiB streams in (8 MiB copy and hash
chunks, 64 KiB network reads).

``--baseline-src`` is the ``src`` folder of another checkout (e.g. a git worktree of main).
"""

from __future__ import annotations

import argparse
import compileall
import os
import pty
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"


def _in_terminal(command: list[str], env: dict[str, str]) -> int:
    """Run *command* on a pseudo-terminal, draining what it draws; its exit code."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    while True:
        try:
            if not os.read(master, 65536):
                break
        except OSError:  # EIO: the child closed the terminal
            break
    os.close(master)
    return process.wait()


def _timed(command: list[str], env: dict[str, str], *, tty: bool) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, all threads) of *command*."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if tty:
        code = _in_terminal(command, env)
    else:
        code = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False
        ).returncode
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def one_round(src: Path, data: Path, work: Path, *, tty: bool) -> dict[str, float]:
    """Wall-clock and CPU seconds of a put of *data* and a get of it, with *src*'s soko."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "SOKO_DIR": str(work / "store"),
        "SOKO_CACHE_DIR": str(work / "cache"),
        "SOKO_SILENT": "false",
        "TERM": "xterm",
        "COLUMNS": "120",
    }
    env.pop("SOKO_BASE_URL", None)
    soko = [sys.executable, "-c", "from soko.cli.main import main; main()"]
    subprocess.run(["sync"], check=True)
    put = _timed([*soko, "artifact", "put", str(data), "--name", "bench/big"], env, tty=tty)
    subprocess.run(["sync"], check=True)
    get = _timed([*soko, "artifact", "get", "bench/big", "--root", str(work / "out")], env, tty=tty)
    shutil.rmtree(work, ignore_errors=True)
    return {"put": put[0], "put cpu": put[1], "get": get[0], "get cpu": get[1]}


def call_costs() -> None:
    """Nanoseconds per count() call: unmetered, and metered into a drawn bar."""
    sys.path.insert(0, str(HERE_SRC))
    from soko.core import metering
    from soko.sdk import progress

    calls = 200_000
    # CPU time of this process (all threads, the bar's refresh thread included): a loaded
    # host stretches wall-clock time far more.
    for _ in range(2):  # the second pass, once the interpreter has warmed to the loop
        started = time.process_time()
        for _ in range(calls):
            metering.count(65536)
        bare = (time.process_time() - started) / calls * 1e9

    class Terminal:
        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    real, sys.stderr = sys.stderr, Terminal()  # type: ignore[assignment]
    os.environ["SOKO_SILENT"] = "false"
    try:
        with progress.progress_bar("Bench", transient=True, delay=0) as bar:
            assert bar is not None
            bar.start(1, calls * 65536)
            with metering.metered(lambda n: bar(0, n)):
                started = time.process_time()
                for _ in range(calls):
                    metering.count(65536)
                drawn = (time.process_time() - started) / calls * 1e9
    finally:
        sys.stderr = real
    per_gib = 1024**3 / 65536 * drawn / 1e9
    print(f"count(): {bare:6.0f} ns unmetered, {drawn:6.0f} ns into a drawn bar per call (CPU)")
    print(f"  a GiB in 64 KiB reads (16,384 calls): {per_gib * 1000:.1f} ms of accounting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--baseline-src", default=None, help="soko src folder to compare with")
    parser.add_argument("--calls-only", action="store_true", help="only the cost per call")
    args = parser.parse_args()
    call_costs()
    if args.calls_only:
        return
    base = Path(args.workdir or tempfile.mkdtemp(prefix="soko-progress-bench-"))
    data = base / "data"
    if not (data / "big.bin").exists():
        data.mkdir(parents=True, exist_ok=True)
        with open(data / "big.bin", "wb") as handle:
            for _ in range(args.size_mib):
                handle.write(os.urandom(1024 * 1024))
    sources = {"this": HERE_SRC}
    if args.baseline_src:
        sources["baseline"] = Path(args.baseline_src).resolve()
    for src in sources.values():
        compileall.compile_dir(src, quiet=1)  # as an installed package is
    variants = [(name, tty) for name in sources for tty in (True, False)]
    runs: dict[str, list[float]] = {}
    for rep in range(args.repeat):
        order = variants if rep % 2 == 0 else variants[::-1]
        for name, tty in order:
            label = f"{name} {'tty' if tty else 'pipe'}"
            for step, seconds in one_round(sources[name], data, base / "work", tty=tty).items():
                runs.setdefault(f"{label} {step}", []).append(seconds)
    print(f"{args.size_mib} MiB, {args.repeat} repetitions, medians, seconds")
    print(f"(load average {os.getloadavg()[0]:.1f}; CPU is user + system of all threads)")
    for step in ("put", "put cpu", "get", "get cpu"):
        for name in sources:
            tty = statistics.median(runs[f"{name} tty {step}"])
            pipe = statistics.median(runs[f"{name} pipe {step}"])
            line = f"{step:8} {name:9} tty {tty:7.2f}   pipe {pipe:7.2f}"
            line += f"   tty/pipe {tty / pipe:5.2f}"
            if name == "this" and "baseline" in sources:
                before = statistics.median(runs[f"baseline tty {step}"])
                line += f"   this/baseline (tty) {tty / before:5.2f}"
            print(line)
    if not args.workdir:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
