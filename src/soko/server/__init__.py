"""Placeholder: this layer is built by a later issue."""
