"""The client side of soko: the Backend the SDK talks to, transfers, caches, hashing.

It may import core, refs, wire and service (LocalBackend runs the service in process);
never sdk, server or cli.
"""
