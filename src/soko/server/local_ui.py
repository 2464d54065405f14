"""``soko ui``: the web UI over the embedded store, on 127.0.0.1, for its one user.

Like ``mlflow ui``: a person who logs artifacts without a server looks at them in a
browser. It listens on the loopback address only, and needs no sign-in there; the API of
a server is not usable (the embedded store has no users or keys).
"""

from __future__ import annotations

from soko import settings
from soko.errors import StoreError
from soko.metadata.engine import open_engine, sqlite_url
from soko.server.cli import _bind, _url_of
from soko.server.config import ServerConfig
from soko.service.store import Store
from soko.storage.local import LocalBlobStore

HOST = "127.0.0.1"


def serve_local_ui(port: int) -> int:
    """Serve the UI of ``$SOKO_DIR``'s store until stopped; the exit code."""
    import uvicorn

    from soko.server.app import create_app

    root = settings.load().soko_dir
    database = root / "soko.db"
    if not database.is_file():
        raise StoreError(f"There is no soko store at {root} yet (SOKO_DIR): log an artifact first.")
    store = Store(open_engine(sqlite_url(database)), LocalBlobStore(root / "store"))
    config = ServerConfig(db_url=sqlite_url(database), store_url=str(root / "store"))
    sock = _bind(HOST, port)
    print(f"soko ui: the store at {root} on {_url_of(sock)}", flush=True)
    app = create_app(config, store=store, local_ui=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    server.run(sockets=[sock])
    return 0 if server.started else 1
