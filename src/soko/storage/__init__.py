"""BlobStore implementations: content-addressed bytes. Imports core and errors only."""
