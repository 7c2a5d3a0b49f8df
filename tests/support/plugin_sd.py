"""Fixtures for the sd stand-in (see tests/support)."""
