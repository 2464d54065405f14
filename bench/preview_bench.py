"""The web UI's previews, timed on the server: pages of a large Table and thumbnails of
large images, beside sending the same files whole.

Run by hand (a minute)::

    .venv/bin/python bench/preview_bench.py [--rows 100000] [--rounds 9]

The store is an embedded store in a temporary folder holding one version: a Table of
``--rows`` rows (W&B's ``.table.json``, four columns, ``nrows`` after ``data`` as soko and
W&B write it), a 3000 x 2000 JPEG and a 2000 x 1500 PNG of noise (what compresses worst).
Requests go through the app in-process (Starlette's test client), so the time is the
server's. Each round alternates the compared requests; medians of wall-clock and CPU
milliseconds (the process's, every thread) are printed, and the ratios:

- ``table page 1`` (50 rows, the table's shape kept from an earlier view), ``table page
  1, first view`` (the shape read first: a pass over the whole file), ``table last page``
  (the rows before it parsed and dropped), against ``table file`` (the file sent whole,
  what a browser would otherwise load);
- ``thumbnail of the JPEG`` and ``... of the PNG``, made (the kept thumbnails emptied
  before each request) and kept, against the image file sent whole.

Nothing is asserted; docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from soko.core.digests import Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.server.app import create_app
from soko.server.config import ServerConfig
from soko.server.ui.tables import ROWS_PER_PAGE, Shapes
from soko.server.ui.thumbs import Thumbs
from soko.service.commit import commit_version
from soko.service.store import Store


def _table(rows: int) -> bytes:
    data = [[i, f"text of row {i}", i / 7, {"k": [i, i + 1]}] for i in range(rows)]
    document = {
        "_type": "table",
        "columns": ["id", "text", "score", "extra"],
        "data": data,
        "ncols": 4,
        "nrows": rows,
    }
    return json.dumps(document, sort_keys=True).encode()


def _noise(width: int, height: int, kind: str) -> bytes:
    pixels = random.Random(7).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, kind)
    return out.getvalue()


def build(root: Path, rows: int) -> tuple[Store, str, dict[str, int]]:
    store = Store.open_local(root)
    files = {
        "big.table.json": _table(rows),
        "photo.jpg": _noise(3000, 2000, "JPEG"),
        "scan.png": _noise(2000, 1500, "PNG"),
    }
    entries = []
    for path, data in files.items():
        digest = Digest.of_bytes(data)
        store.blobs.put_bytes(digest, data)
        entries.append(Entry(path=path, digest=digest.b64, size=len(data)))
    version = commit_version(
        store,
        CommitRequest(
            entity="e", project="p", name="previews", type="dataset", manifest=Manifest.of(entries)
        ),
    )
    return store, version.id, {path: len(data) for path, data in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soko-preview-bench-") as folder:
        store, version_id, sizes = build(Path(folder), args.rows)
        app = create_app(ServerConfig(db_url="", store_url=folder), store=store, local_ui=True)
        client = TestClient(app, base_url="http://127.0.0.1")
        last_page = (args.rows + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE

        def get(url: str, **params: object) -> None:
            answer = client.get(url, params=params)
            if answer.status_code != 200:
                raise SystemExit(f"{url}: {answer.status_code} {answer.text[:300]}")

        def table(page: int, *, first_view: bool = False) -> Callable[[], None]:
            def call() -> None:
                if first_view:
                    app.state.ui_table_shapes = Shapes()
                get(f"/v/{version_id}/table", path="big.table.json", page=page)

            return call

        def thumb(path: str, *, made: bool) -> Callable[[], None]:
            def call() -> None:
                if made:
                    app.state.ui_thumbs = Thumbs()
                get(f"/v/{version_id}/thumb", path=path)

            return call

        def whole(path: str) -> Callable[[], None]:
            return lambda: get(f"/v/{version_id}/file", path=path)

        peers: dict[str, Callable[[], None]] = {
            "table page 1": table(1),
            "table page 1, first view": table(1, first_view=True),
            f"table last page ({last_page})": table(last_page),
            "table file, whole": whole("big.table.json"),
            "thumbnail of the JPEG, made": thumb("photo.jpg", made=True),
            "thumbnail of the JPEG, kept": thumb("photo.jpg", made=False),
            "JPEG file, whole": whole("photo.jpg"),
            "thumbnail of the PNG, made": thumb("scan.png", made=True),
            "PNG file, whole": whole("scan.png"),
        }
        for call in peers.values():  # once, untimed: imports, template compilation
            call()
        wall: dict[str, list[float]] = {name: [] for name in peers}
        cpu: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(args.rounds):
            for name, call in peers.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                call()
                wall[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - started_cpu) * 1000)
    mb = {path: size / 1e6 for path, size in sizes.items()}
    print(
        f"table of {args.rows} rows ({mb['big.table.json']:.1f} MB), JPEG 3000x2000 "
        f"({mb['photo.jpg']:.1f} MB), PNG 2000x1500 ({mb['scan.png']:.1f} MB); "
        f"medians of {args.rounds} rounds"
    )
    print(f"| {'request':<30} | {'wall ms':>8} | {'CPU ms':>8} |")
    print(f"| {'-' * 30} | {'-' * 7}:| {'-' * 7}:|")
    med = {name: statistics.median(values) for name, values in cpu.items()}
    for name in peers:
        print(f"| {name:<30} | {statistics.median(wall[name]):8.1f} | {med[name]:8.1f} |")
    print()
    file_cpu = med["table file, whole"]
    print(
        "CPU ratios to the table file sent whole: page 1 "
        f"{med['table page 1'] / file_cpu:.3f}, first view "
        f"{med['table page 1, first view'] / file_cpu:.2f}, last page "
        f"{med[f'table last page ({last_page})'] / file_cpu:.2f}"
    )
    print(
        "CPU ratios to the image sent whole: JPEG thumbnail made "
        f"{med['thumbnail of the JPEG, made'] / med['JPEG file, whole']:.2f}, kept "
        f"{med['thumbnail of the JPEG, kept'] / med['JPEG file, whole']:.3f}; PNG made "
        f"{med['thumbnail of the PNG, made'] / med['PNG file, whole']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
