"""Does a model from a link fit what the user runs?  Said before the download starts, never blocking it.

* a checkpoint of a family the generation UI cannot load (Flux, SD 3, …):
  it would be listed but not loaded;
* a LoRA, embedding, VAE … for one family while every checkpoint in the
  library is of another (an SDXL LoRA with only SD 1.5 checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bootstrap.i18n import pick
from bootstrap.layout import Bundle
from launcher.models.sidecar import family

NAMES = {"sd15": "SD 1.5", "sd2": "SD 2.x", "sdxl": "SDXL"}


def mismatch(base_model: str, kind: str, checkpoints: Iterable[str]) -> tuple[str, str] | None:
    """(zh, en) warning for a file of ``base_model`` and ``kind``, given the library's checkpoint families."""
    if not base_model:
        return None
    fam = family(base_model)
    if fam is None:
        if kind == "checkpoint":
            return (f"注意：这个模型的基础模型是 {base_model}，生成界面只能加载 SD 1.5、SD 2.x 和 SDXL 模型；它会出现在列表里，但加载不了。",
                    f"Note: this model's base model is {base_model}; the generation UI loads SD 1.5, SD 2.x and SDXL "
                    "models only, so it will be listed but cannot be loaded.")  # fmt: skip
        return (f"注意：它是为 {base_model} 做的，生成界面的 SD 1.5、SD 2.x、SDXL 模型用不了它。",
                f"Note: it was made for {base_model}; the generation UI's SD 1.5, SD 2.x and SDXL models cannot use it.")  # fmt: skip
    have = {c.replace("sd2-v", "sd2") for c in checkpoints}
    if kind == "checkpoint" or not have or fam in have:
        return None
    mine = "、".join(NAMES.get(h, h) for h in sorted(have))
    return (f"注意：它是为 {base_model}（{NAMES[fam]}）做的，而你的大模型都是 {mine}；要配合 {NAMES[fam]} 的大模型使用。",
            f"Note: it was made for {base_model} ({NAMES[fam]}), but your checkpoints are {mine.replace('、', ', ')}; "
            f"use it with an {NAMES[fam]} checkpoint.")  # fmt: skip


def base_model_warning(bundle: Bundle, cfg: Any, base_model: str, kind: str, lang: str) -> str | None:
    """The warning to say for this download, or None (the library is read from headers, no hashing)."""
    if not base_model:
        return None
    from launcher.models.library import scan

    checkpoints: list[str] = []
    if kind != "checkpoint" and family(base_model) is not None:
        extra = [Path(p) for p in cfg["models.extra_dirs"]] if cfg is not None else []
        files = scan(bundle, extra, with_hashes=False)
        checkpoints = [str(f.architecture) for f in files
                       if f.folder == "checkpoint" and (f.architecture in NAMES or f.architecture == "sd2-v")]  # fmt: skip
    found = mismatch(base_model, kind, checkpoints)
    return pick(lang, *found) if found else None
