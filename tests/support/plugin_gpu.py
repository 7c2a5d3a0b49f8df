"""Fixtures for the gpu stand-in (see tests/support)."""
