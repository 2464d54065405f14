"""The option checks of ``soko server``: every problem named, nothing refused that works."""

from __future__ import annotations

from typing import Any

from soko.server.startup import config_problems

_GOOD: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8765,
    "workers": 1,
    "db": None,
    "store": None,
    "s3_endpoint_url": None,
    "root_path": "",
    "forwarded_allow_ips": None,
    "access_log": "off",
    "max_manifest_bytes": None,
}


def problems(**changed: Any) -> list[str]:
    return config_problems(**{**_GOOD, **changed})


def test_working_options_have_no_problem() -> None:
    assert problems() == []
    assert (
        problems(
            host="::1",
            port=0,
            workers=4,
            db="postgresql://soko:secret@db.internal:5432/soko",
            store="s3://bucket/prefix",
            s3_endpoint_url="https://minio.internal:9000",
            root_path="/soko",
            forwarded_allow_ips="10.0.0.0/8, 192.168.1.7,::1",
            access_log="json",
            max_manifest_bytes=1024,
        )
        == []
    )
    assert problems(db="sqlite:////var/lib/soko/soko.db", store="file:///srv/blobs") == []
    assert problems(forwarded_allow_ips="*") == []


def test_each_problem_is_one_line_naming_the_option() -> None:
    cases = {
        "--port": {"port": 70000},
        "--host": {"host": " "},
        "--workers": {"workers": 0},
        "--db": {"db": "mysql://root:hunter2@db/soko"},
        "--store": {"store": "gs://bucket/prefix"},
        "--root-path": {"root_path": "/soko/"},
        "--forwarded-allow-ips": {"forwarded_allow_ips": "10.0.0.1,proxy"},
        "--access-log": {"access_log": "xml"},
        "--max-manifest-bytes": {"max_manifest_bytes": -1},
        "--s3-endpoint-url": {"s3_endpoint_url": "minio:9000"},
    }
    for option, changed in cases.items():
        found = problems(**changed)
        assert len(found) == 1 and option in found[0] and "\n" not in found[0], found
    assert "hunter2" not in problems(db="mysql://root:hunter2@db/soko")[0]
    assert "'/tmp/soko.db'" in problems(db="/tmp/soko.db")[0]
    assert len(problems(port=-1, workers=0, access_log="x")) == 3
