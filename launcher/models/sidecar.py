"""Metadata beside a downloaded model, in the files A1111's Extra Networks cards and Civitai helpers read.

For ``models/Lora/NAME.safetensors``:

* ``NAME.json`` -- A1111's user metadata (``description``, ``sd version``,
  ``activation text`` = the trigger words, ``preferred weight``,
  ``negative text``, ``notes``), plus where the file came from (``source
  url``, ``version``, ``base model``, ``sha256``).  Keys a user already set
  in an existing file are kept;
* ``NAME.civitai.info`` -- Civitai's model-version record, as the Civitai
  Helper extension writes it (Civitai downloads only);
* ``NAME.preview.png`` (``.jpg``, ``.webp``, ``.gif``: named by what the
  bytes are, as A1111's cards look for each of these) -- the version's first
  image (a safe-for-work one when there is one), which the cards show; the
  bytes are the image as Civitai sends it, and anything else (a video, a page)
  is not saved as a preview.

A preview that cannot be fetched is said and skipped: the model itself is
already verified and saved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap.atomic import write_atomic
from bootstrap.i18n import pick

PREVIEW_TIMEOUT = 15.0
PREVIEW_MAX = 20 << 20  # an image larger than this is not a preview


@dataclass(frozen=True)
class Sidecar:
    site: str  # civitai | modelscope | huggingface | url
    source_url: str
    version: str = ""
    model_name: str = ""
    base_model: str = ""  # as the site names it: "SD 1.5", "SDXL 1.0", "Pony" …
    trigger_words: tuple[str, ...] = ()
    description: str = ""
    preview_url: str = ""
    civitai_info: dict[str, Any] | None = field(default=None, compare=False)


def sd_version(base_model: str) -> str:
    """A1111's ``sd version`` for a base model name: SD1, SD2, SDXL or Unknown."""
    low = base_model.lower()
    if re.search(r"\bsd ?1(\.\d)?\b", low):
        return "SD1"
    if re.search(r"\bsd ?2(\.\d)?\b", low):
        return "SD2"
    if "sdxl" in low or any(w in low for w in ("pony", "illustrious", "noobai")):
        return "SDXL"
    return "Unknown"


def family(base_model: str) -> str | None:
    """The library's architecture family (sd15, sd2, sdxl) a base model belongs to; None for others (Flux …)."""
    return {"SD1": "sd15", "SD2": "sd2", "SDXL": "sdxl"}.get(sd_version(base_model))


def _plain(html: str) -> str:
    text = re.sub(r"<br\s*/?>|</p>", "\n", html, flags=re.I)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def user_metadata(sidecar: Sidecar, sha256: str) -> dict[str, Any]:
    """The ``NAME.json`` A1111 reads, with the source facts added."""
    notes = sidecar.source_url + (f" ({sidecar.model_name} {sidecar.version})".rstrip() if sidecar.version else "")
    return {
        "description": _plain(sidecar.description),
        "sd version": sd_version(sidecar.base_model),
        "activation text": ", ".join(sidecar.trigger_words),
        "preferred weight": 0,
        "negative text": "",
        "notes": notes.replace(" ()", ""),
        "source url": sidecar.source_url,
        "version": sidecar.version,
        "base model": sidecar.base_model,
        "sha256": sha256,
    }


def sidecar_paths(model: Path) -> dict[str, Path]:
    stem = model.with_suffix("")
    return {
        "json": stem.with_name(stem.name + ".json"),
        "civitai": stem.with_name(stem.name + ".civitai.info"),
        "preview": stem.with_name(stem.name + ".preview.png"),
    }


# The picture formats A1111's Extra Networks cards look for beside a model (NAME.preview.EXT), by their first bytes.
PREVIEW_KINDS = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF8", "gif"))


def preview_extension(data: bytes) -> str | None:
    """``png``, ``jpg``, ``webp`` or ``gif`` for the image in ``data``; None when it is none of them."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((ext for magic, ext in PREVIEW_KINDS if data.startswith(magic)), None)


def _fetch_preview(url: str) -> bytes:
    import requests

    from launcher.downloads.transfer import USER_AGENT

    with requests.get(url, headers={"User-Agent": USER_AGENT}, timeout=PREVIEW_TIMEOUT, stream=True) as resp:
        resp.raise_for_status()
        data = resp.raw.read(PREVIEW_MAX + 1, decode_content=True)
    if len(data) > PREVIEW_MAX:
        raise ValueError("larger than 20 MB")
    if preview_extension(data) is None:
        raise ValueError("not a PNG, JPEG, WebP or GIF picture")
    return data


def write_sidecars(model: Path, sidecar: Sidecar, sha256: str, *, lang: str = "en",
                   say: Callable[[str], None] = lambda _: None,
                   fetch_preview: Callable[[str], bytes] = _fetch_preview) -> list[Path]:  # fmt: skip
    """Write the metadata files beside ``model``; returns what was written."""
    paths = sidecar_paths(model)
    written: list[Path] = []
    meta = user_metadata(sidecar, sha256)
    try:
        old = json.loads(paths["json"].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict):  # what the user wrote in the card editor wins
        meta.update({k: v for k, v in old.items() if v not in ("", None, 0) or k not in meta})
    write_atomic(paths["json"], json.dumps(meta, ensure_ascii=False, indent=4), fsync=False)
    written.append(paths["json"])
    if sidecar.civitai_info is not None:
        write_atomic(paths["civitai"], json.dumps(sidecar.civitai_info, ensure_ascii=False, indent=4), fsync=False)
        written.append(paths["civitai"])
    stem = paths["preview"].name.removesuffix(".png")
    existing = [paths["preview"].with_name(f"{stem}.{ext}") for ext in ("png", "jpg", "webp", "gif")]
    if sidecar.preview_url and not any(p.exists() for p in existing):
        try:
            data = fetch_preview(sidecar.preview_url)
            ext = preview_extension(data)
            if ext is None:
                raise ValueError("not a PNG, JPEG, WebP or GIF picture")
            target = paths["preview"].with_name(f"{stem}.{ext}")
            write_atomic(target, data, fsync=False)
            written.append(target)
        except Exception as exc:  # a missing picture never undoes a verified model
            say(pick(lang, f"预览图没有下载（{type(exc).__name__}: {exc}），模型本身已保存。",
                     f"The preview image was not downloaded ({type(exc).__name__}: {exc}); the model is saved."))  # fmt: skip
    return written
