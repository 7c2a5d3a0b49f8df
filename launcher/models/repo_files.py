"""Which file of a repository a link without a file means (Hugging Face and ModelScope alike)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from launcher.errors import LinkNotFound, ModelFileChoice
from launcher.models.catalog import MODEL_FILE_SUFFIXES


def choose_model_file(paths: Sequence[str], wanted: str, where: str) -> str:
    """The path ``--file`` names (exactly, or by its file name), else the repository's one model file.

    Several model files: a single ``.safetensors`` among them wins (the others are pickles or
    diffusers parts); otherwise the user must choose, and is shown the list.
    """
    if wanted:
        want = wanted.strip("/").lower()
        hits = [p for p in paths if p.lower() == want] or [p for p in paths if PurePosixPath(p).name.lower() == want]
        if len(hits) == 1:
            return hits[0]
        listing = "; ".join(p for p in paths if p.endswith(MODEL_FILE_SUFFIXES)) or "-"
        raise ModelFileChoice(where=where, why_zh=f"没有「{wanted}」" if not hits else f"「{wanted}」有多个",
                              why_en=f"none is {wanted!r}" if not hits else f"several are {wanted!r}",
                              listing=listing)  # fmt: skip
    # Top-level files first: a diffusers layout keeps its parts in sub-folders (unet/, vae/ …).
    models = [p for p in paths if p.endswith(MODEL_FILE_SUFFIXES)]
    if not models:
        raise LinkNotFound(site=where, what="a model file (.safetensors, .ckpt, .pt, .pth, .bin)", status="none listed")
    top = [p for p in models if "/" not in p] or models
    safe = [p for p in top if p.endswith(".safetensors")]
    if len(top) == 1:
        return top[0]
    if len(safe) == 1:
        return safe[0]
    raise ModelFileChoice(where=where, why_zh="没有指明要哪一个", why_en="and none was named",
                          listing="; ".join(top))  # fmt: skip
