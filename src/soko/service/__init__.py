"""The use cases of soko: the only layer that touches blobs and metadata together.

The embedded store (client.LocalBackend) calls it in process; the server calls it behind
HTTP. Business rules (commit order, version numbering, aliases, dedup, lineage, deletion)
exist here once.
"""
