"""Weir benchmark harness (see bench/README.md)."""
