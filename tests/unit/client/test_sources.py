"""A blob source reads its bytes from the one place that has them: the bytes kept from
hashing, else a staged copy while it exists, else the file that was added."""

from __future__ import annotations

from pathlib import Path

from soko.client.sources import BlobSource
from soko.core.digests import Digest


def test_kept_bytes_are_read_before_any_file(tmp_path: Path) -> None:
    added = tmp_path / "added.bin"
    added.write_bytes(b"changed since")
    source = BlobSource(Digest.of_bytes(b"kept"), 4, str(added), b"kept")
    with source.open() as stream:
        assert stream.read() == b"kept"
    assert source.read() == b"kept"


def test_a_staged_copy_is_read_while_it_exists_then_the_added_file(tmp_path: Path) -> None:
    added, copy = tmp_path / "added.bin", tmp_path / "copy.bin"
    added.write_bytes(b"edited after staging")
    copy.write_bytes(b"as staged")
    source = BlobSource(Digest.of_bytes(b"as staged"), 9, str(added), copy=str(copy))
    assert source.read() == b"as staged"
    assert source.readable_path == str(copy)

    copy.unlink()  # a cache cleanup removed it: the added file is all there is
    with source.open() as stream:
        assert stream.read() == b"edited after staging"
    assert source.readable_path == str(added)
