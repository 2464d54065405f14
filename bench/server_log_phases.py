"""Where a log through a server spends its time: the client's requests by route, side by
side with another checkout's.

Each round logs the same folder (``scale_bench``'s data: N files of 1 KiB, 1,000 to a
folder) into a fresh ``soko server`` (SQLite and a blob folder on a loopback port), one
child process a log, this checkout's and the baseline's alternating first. The child
times each API request it makes (the route, how many, the seconds they took in all, two
or more at once, and when the first began) and the run prints, per code, the log's
wall-clock seconds, the client's and the server's CPU seconds, and the medians.

    python bench/server_log_phases.py --files 200000 --repeat 3 --baseline-src DIR
        [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

from scale_bench import LOG, THIS_SRC, WARM_UP, Server, clean_env, make_data, run_child

TIMED_LOG = (
    """
import atexit, re, sys, time
from soko.client import http_session
started = time.perf_counter()
calls = {}
call = http_session.ApiSession.call
def timed(self, method, path, *args, **kwargs):
    begun = time.perf_counter()
    try:
        return call(self, method, path, *args, **kwargs)
    finally:
        route = method + " " + re.sub(r"/[0-9a-f]{8,}(?=/|$)", "/*", str(path))
        count, seconds, first = calls.get(route, (0, 0.0, begun - started))
        calls[route] = (count + 1, seconds + time.perf_counter() - begun, first)
http_session.ApiSession.call = timed
@atexit.register
def report():
    for route, (count, seconds, first) in sorted(calls.items(), key=lambda c: c[1][2]):
        print(f"  {route}: {count} requests, {seconds:.2f} s in all, first at {first:.2f} s",
              file=sys.stderr)
"""
    + LOG
)


def one_log(src: Path, data: Path, base: Path) -> tuple[float, float, float]:
    """Seconds, client CPU seconds and server CPU seconds of one log into a new server."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    server = Server(src, base)
    try:
        env = clean_env(src)
        env.update(
            SOKO_DIR=str(base / "soko"),
            SOKO_CACHE_DIR=str(base / "cache"),
            SOKO_BASE_URL=server.url,
            SOKO_API_KEY=server.key,
        )
        run_child([sys.executable, "-c", WARM_UP], env, base)
        served = server.cpu_seconds()
        seconds, _, cpu = run_child([sys.executable, "-c", TIMED_LOG, str(data)], env, base)
        return seconds, cpu, server.cpu_seconds() - served
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/soko-log-phases")
    parser.add_argument("--baseline-src", type=Path, required=True)
    args = parser.parse_args()
    work = Path(args.workdir)
    data = work / f"data-{args.files}"
    make_data(data, args.files)
    codes = {"this": THIS_SRC, "baseline": args.baseline_src.resolve()}
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in codes}
    for round_no in range(args.repeat):
        order = list(codes) if round_no % 2 == 0 else list(reversed(codes))
        for name in order:
            print(f"round {round_no + 1}, {name}:", file=sys.stderr, flush=True)
            got = one_log(codes[name], data, work / f"log-{name}")
            results[name].append(got)
            print(
                f"round {round_no + 1}: {name} log {got[0]:.2f} s, client CPU {got[1]:.2f} s, "
                f"server CPU {got[2]:.2f} s",
                flush=True,
            )
    print(f"\n{args.files:,} files through a server, medians of {args.repeat}")
    print("| code | log s | client CPU s | server CPU s |")
    print("| --- | ---: | ---: | ---: |")
    for name, rounds in results.items():
        medians = [statistics.median(r[i] for r in rounds) for i in range(3)]
        print(f"| {name} | " + " | ".join(f"{m:.2f}" for m in medians) + " |")


if __name__ == "__main__":
    main()
