"""The user-facing SDK: Artifact, Run, Api and the data types.

It reaches stores only through :mod:`soko.client`; it never imports storage, metadata,
service or server.
"""
