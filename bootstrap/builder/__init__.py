"""The environment builder: a pack's pinned Python, torch trio and runtime, made real.

Not part of stage 0: this runs inside the launcher and uses its core
(mirrors, downloads, packs).  It builds the generation environment
``env/runtime`` with uv (pip as the fallback), through the chosen mirrors,
beside the one in use, and swaps it in only after its self-check passed.
"""
