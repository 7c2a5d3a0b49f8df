"""Mirrors: the catalog, the user's choice per channel, measurement and fallback."""
