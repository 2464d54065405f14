"""The pure domain of soko: digests, manifests, names and paths.

Nothing here opens a file, reads the clock or touches the network, and nothing here imports
a layer above it (storage, metadata, service, client, sdk, server, cli).
"""
