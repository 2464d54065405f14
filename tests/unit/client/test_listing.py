"""The walk of a folder added to an artifact: every file once, folders in inode order."""

from __future__ import annotations

import os
from pathlib import Path

from soko.client.listing import walk_files, walk_names


def test_folders_are_walked_in_the_order_of_their_inodes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    names = [f"n{i:02}" for i in range(12)]
    for name in reversed(names):  # made in the reverse order of their names
        (root / name / "deep").mkdir(parents=True)
        (root / name / "f").write_text(name)
        (root / name / "deep" / "g").write_text(name)
    (root / "top").write_text("top")
    walked = walk_names(str(root), "pre/")
    assert sorted(walked) == sorted(
        ["pre/top", *(f"pre/{n}/f" for n in names), *(f"pre/{n}/deep/g" for n in names)]
    )
    folders = list(dict.fromkeys(p.split("/")[1] for p in walked if p.count("/") > 1))
    assert folders == sorted(names, key=lambda n: os.stat(root / n).st_ino)
    # A folder's own files come before those of its folders, which come before its
    # next sibling's.
    for name in names:
        assert walked.index(f"pre/{name}/f") + 1 == walked.index(f"pre/{name}/deep/g")
    physical, logical = walk_files(str(root), "")
    assert [p[len(str(root)) + 1 :] for p in physical] == [p[4:] for p in walked]
    assert logical == [p[4:] for p in walked]
