"""Fixtures for the http stand-in (see tests/support)."""
