"""Reference handlers: turn a URI into manifest entries (digest, size, extra) and fetch it.

A handler is chosen by URI scheme in :mod:`soko.refs.registry`; handlers with heavy
dependencies (boto3, google-cloud-storage) are imported only when their scheme is used.
This layer imports core and errors only.
"""
