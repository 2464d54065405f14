"""What ``soko server`` checks before it serves: its options, its extra, its database and store.

Every mistake an operator can make at start-up ends in one line per problem that says what
to do, and a non-zero exit, never a traceback: an option out of range, a database URL of a
kind soko does not speak, the ``server`` extra not installed, a database that does not exist
or does not answer, a bucket without credentials or out of reach. The options are checked
all at once, so that one start names every problem.

This module imports neither FastAPI nor uvicorn at import time: it must run without them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec

from soko.errors import StoreError

SERVER_MODULES = (
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "psycopg",
    "jinja2",
    "itsdangerous",
    "grandalf",
    "zipstream",
    "swagger_ui",
    "ijson",
    "PIL",
)
"""What ``pip install 'soko[server]'`` brings and the server imports."""
ACCESS_LOG_FORMATS = ("off", "text", "json")
DB_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def require_server_extra() -> None:
    """StoreError (one line) naming the install command when a server module is missing."""
    missing = [name for name in SERVER_MODULES if find_spec(name) is None]
    if missing:
        raise StoreError(
            f"soko server needs the 'server' extra ({', '.join(missing)} missing): "
            "pip install 'soko[server]'"
        )


def config_problems(
    *,
    host: str,
    port: int,
    workers: int,
    db: str | None,
    store: str | None,
    s3_endpoint_url: str | None,
    root_path: str,
    forwarded_allow_ips: str | None,
    access_log: str,
    max_manifest_bytes: int | None,
) -> list[str]:
    """One line per problem with these options of ``soko server``; empty when all are fine."""
    problems: list[str] = []
    if not host.strip():
        problems.append("--host is empty: give an address to listen on, e.g. 127.0.0.1.")
    if not 0 <= port <= 65535:
        problems.append(f"--port {port} is not a port: use 1-65535, or 0 for any free one.")
    if workers < 1:
        problems.append(f"--workers {workers}: give at least 1 server process.")
    if db is not None:
        scheme = db.partition("://")[0].lower() if "://" in db else ""
        if scheme not in DB_SCHEMES:
            problems.append(
                f"Unsupported --db {_scheme_shown(db)}: soko keeps its metadata in SQLite "
                "(sqlite:///path/soko.db) or PostgreSQL (postgresql://user@host/database)."
            )
    if store is not None and "://" in store and not store.startswith(("s3://", "file://")):
        problems.append(
            f"Unsupported --store {_scheme_shown(store)}: use a folder, file:///path or "
            "s3://bucket/prefix."
        )
    if store is not None and store.startswith("s3://") and not store[5:].partition("/")[0]:
        problems.append(f"--store {store!r} names no bucket: use s3://bucket/prefix.")
    if s3_endpoint_url is not None and not s3_endpoint_url.startswith(("http://", "https://")):
        problems.append(f"--s3-endpoint-url {s3_endpoint_url!r} is not an http:// or https:// URL.")
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        problems.append(
            f"--root-path {root_path!r}: give the prefix the proxy strips, starting with / "
            "and not ending with one (e.g. /soko)."
        )
    if forwarded_allow_ips is not None:
        problems.extend(_forwarded_problems(forwarded_allow_ips))
    if access_log not in ACCESS_LOG_FORMATS:
        problems.append(f"--access-log {access_log!r}: choose one of off, text, json.")
    if max_manifest_bytes is not None and max_manifest_bytes < 1:
        problems.append("--max-manifest-bytes must be a positive number of bytes.")
    return problems


def _scheme_shown(url: str) -> str:
    """The URL without what may be a password: its scheme only (a path is shown whole)."""
    if "://" not in url:
        return repr(url)
    return repr(url.partition("://")[0] + "://…")


def _forwarded_problems(value: str) -> Iterator[str]:
    for item in (part.strip() for part in value.split(",")):
        if item == "*" or item.startswith("unix:"):
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            yield (
                f"--forwarded-allow-ips: {item!r} is not an IP address or network; give the "
                "proxies' addresses separated by commas (or * to trust any)."
            )


@contextmanager
def opening_database(shown_url: str) -> Iterator[None]:
    """Turn the driver's failure to open the metadata database into one StoreError line."""
    from sqlalchemy.exc import DBAPIError, NoSuchModuleError

    try:
        yield
    except NoSuchModuleError:
        raise StoreError(
            f"Unsupported --db {shown_url}: use sqlite:///path or postgresql://user@host/db."
        ) from None
    except DBAPIError as exc:
        raise StoreError(
            f"Cannot open the metadata database {shown_url}: {_driver_reason(exc)}. "
            f"{_database_advice(str(exc.orig))}"
        ) from None


def _driver_reason(exc: Exception) -> str:
    """The first meaningful line of a driver's error, without SQLAlchemy's wrapping."""
    orig = getattr(exc, "orig", None) or exc
    for line in str(orig).splitlines():
        line = line.strip()
        if line:
            return line.rstrip(".")
    return type(orig).__name__


def _database_advice(reason: str) -> str:
    if "does not exist" in reason:
        return "Create the database (createdb NAME, or CREATE DATABASE) or fix --db."
    if "password" in reason or "authentication" in reason:
        return "Check the user and password in --db."
    if "refused" in reason or "timeout" in reason or "resolve" in reason:
        return "Start PostgreSQL or fix the host and port in --db."
    return "Check --db."


@contextmanager
def opening_store(store_url: str) -> Iterator[None]:
    """Turn boto's failures to reach a bucket into one StoreError line."""
    try:
        yield
    except StoreError as exc:
        raise StoreError(_one_line(str(exc))) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "botocore":
            raise
        name = type(exc).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            advice = (
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for the server"
            )
        elif name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
            advice = "check --s3-endpoint-url and that the S3 service is up"
        else:
            advice = "check the bucket, its region (AWS_DEFAULT_REGION) and the credentials"
        raise StoreError(
            f"Cannot open the blob store {store_url}: {_one_line(str(exc))}; {advice}."
        ) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())
