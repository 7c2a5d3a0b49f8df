"""Fixtures for the index stand-in (see tests/support)."""
