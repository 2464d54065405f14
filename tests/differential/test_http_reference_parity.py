"""http(s) references: soko records what the `wandb` package records for the same URL.

A local ``http.server`` on 127.0.0.1 serves files with a strong, weak or unquoted ETag,
with none, without a Content-Length, and behind a redirect.
"""

from __future__ import annotations

import hashlib
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import wandb
from wandb_parity import assert_same_artifact

import soko

pytestmark = pytest.mark.differential

FILES = {
    "data.csv": b"a,b\n1,2\n",
    "empty.bin": b"",
    "é ü.txt": "naïve text".encode(),
}


class _Handler(BaseHTTPRequestHandler):
    """``/<mode>/<file>``: mode picks the ETag style; ``/redirect/...`` sends a 302."""

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        mode, _, name = parsed.path.lstrip("/").partition("/")
        name = urllib.parse.unquote(name)
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", f"/etag/{urllib.parse.quote(name)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = FILES.get(name)
        if body is None:
            self.send_error(404)
            return
        tag = hashlib.md5(body + parsed.query.encode()).hexdigest()
        self.send_response(200)
        etag = {"etag": f'"{tag}"', "weak": f'W/"{tag}"', "bare": tag}.get(mode)
        if etag is not None:
            self.send_header("ETag", etag)
        if mode != "nolength":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _both(algorithm: str = "MD5") -> tuple[wandb.Artifact, soko.Artifact]:
    return (
        wandb.Artifact("parity", "dataset", digest_algorithm=algorithm),
        soko.Artifact("parity", "dataset", digest_algorithm=algorithm),
    )


@pytest.mark.parametrize("mode", ["etag", "weak", "bare", "plain", "nolength", "redirect"])
@pytest.mark.parametrize("file_name", sorted(FILES))
def test_reference_entry_matches_wandb(server: str, mode: str, file_name: str) -> None:
    url = f"{server}/{mode}/{urllib.parse.quote(file_name)}"
    w_art, s_art = _both()
    for art in (w_art, s_art):
        art.add_reference(url)
    assert_same_artifact(w_art, s_art)
    (entry,) = s_art.manifest
    assert entry.path == urllib.parse.quote(file_name)


@pytest.mark.parametrize("algorithm", ["MD5", "XXH128"])
def test_many_references_in_one_artifact(server: str, algorithm: str) -> None:
    w_art, s_art = _both(algorithm)
    for art in (w_art, s_art):
        art.add_reference(f"{server}/etag/data.csv", name="named/strong.csv")
        art.add_reference(f"{server}/plain/data.csv", name="named/no-etag.csv")
        art.add_reference(f"{server}/weak/data.csv", name="unchecked.csv", checksum=False)
        art.add_reference(f"{server}/etag/empty.bin")
    assert_same_artifact(w_art, s_art)
    assert s_art.get_entry("named/strong.csv").extra["etag"].startswith('"')
    assert s_art.get_entry("unchecked.csv").size is None


def test_reference_with_query_string(server: str) -> None:
    w_art, s_art = _both()
    for art in (w_art, s_art):
        art.add_reference(f"{server}/etag/data.csv?version=2")
        art.add_reference(f"{server}/etag/data.csv?version=3", name="v3.csv")
    assert_same_artifact(w_art, s_art)


def test_unencoded_url_matches_wandb(server: str) -> None:
    w_art, s_art = _both()
    for art in (w_art, s_art):
        art.add_reference(f"{server}/etag/é ü.txt", name="raw.txt")
        art.add_reference(f"{server}/plain/é ü.txt", name="raw-plain.txt")
    assert_same_artifact(w_art, s_art)


def test_same_reference_twice_and_conflict(server: str) -> None:
    w_art, s_art = _both()
    for art in (w_art, s_art):
        art.add_reference(f"{server}/etag/data.csv", name="x")
        art.add_reference(f"{server}/etag/data.csv", name="x")
        with pytest.raises(ValueError):
            art.add_reference(f"{server}/etag/data.csv?other", name="x")
    assert_same_artifact(w_art, s_art)
