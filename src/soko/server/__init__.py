"""The soko server: a FastAPI app over the same ``service`` code as the embedded store.

Layers: imports :mod:`soko.service`, :mod:`soko.wire`, :mod:`soko.metadata`,
:mod:`soko.storage` and :mod:`soko.core`; never the SDK or the client. fastapi, uvicorn,
psycopg and boto3 are imported only by the modules that need them (``pip install
'soko[server]'``).
"""
