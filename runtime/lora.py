"""LoRA networks named in prompts (``<lora:name:0.8>``), loaded once and switched per request.

Files come from the library's LoRA folders, looked up by file stem without
regard to case, as A1111 does.  Each is loaded into the pipeline once as a
named PEFT adapter; a request activates the ones its prompt names with their
weights, and a request naming none disables them all, so the base model's
output is exactly what it was.  A LoRA that is missing or made for another
architecture becomes a warning, never a failed generation.

The hash recorded in the PNG info (``Lora hashes``) is the one Civitai
matches: sha256 of the safetensors file without its header ("AutoV3"),
first 12 hex digits.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("yijian.runtime")

MAX_LOADED = 8
FAMILIES = {"sd15": "SD 1.5", "sd2": "SD 2.x", "sd2-v": "SD 2.x", "sdxl": "SDXL"}  # a LoRA fits its own family


@dataclass
class Applied:
    names: list[str] = field(default_factory=list)  # as written in the prompt
    hashes: dict[str, str] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (zh, en)


def addnet_hash(path: Path) -> str:
    """sha256 of a safetensors file's tensor data (after the header); of the whole file otherwise."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if path.suffix.lower() == ".safetensors":
            (n,) = struct.unpack("<Q", f.read(8))
            f.seek(8 + n)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_line(error: Exception, limit: int = 200) -> str:
    """An error's first line: torch lists every mismatched tensor (tens of KB for an SDXL LoRA on SD 1.x)."""
    lines = str(error).strip().splitlines()
    line = lines[0].strip().rstrip(":") if lines else ""
    return (line[: limit - 1] + "…" if len(line) > limit else line) or type(error).__name__


def lora_family(path: Path) -> str | None:
    """The model family a LoRA file was trained for, from its header (no tensor is read); None when unknown."""
    from launcher.models.architecture import detect_header
    from launcher.models.safetensors_header import HeaderError, read_header

    if path.suffix.lower() != ".safetensors":
        return None
    try:
        return FAMILIES.get(detect_header(read_header(path)).architecture)
    except (HeaderError, OSError, ValueError):
        return None


def _adapter_name(path: Path) -> str:
    return "lora_" + re.sub(r"\W", "_", path.stem)


class LoraSet:
    def __init__(self, pipe: Any, architecture: str = "") -> None:
        self.pipe = pipe
        self.family = FAMILIES.get(architecture)  # of the loaded model; None: unknown, every LoRA is tried
        self.loaded: dict[str, Path] = {}  # adapter name -> file
        self.failed: dict[Path, tuple[str, str]] = {}  # file -> why (zh, en); said again at every use
        self._hashes: dict[tuple[Path, float], str] = {}
        self.active = False

    def _hash(self, path: Path) -> str:
        key = (path, path.stat().st_mtime)
        if key not in self._hashes:
            self._hashes[key] = addnet_hash(path)[:12]
        return self._hashes[key]

    def _load(self, adapter: str, path: Path) -> None:
        if len(self.loaded) >= MAX_LOADED:
            self.pipe.delete_adapters(list(self.loaded))
            self.loaded.clear()
        try:
            self.pipe.load_lora_weights(str(path), adapter_name=adapter)
        except ValueError:
            # kohya files written with the original (LDM) UNet names need the UNet config to map them
            self.pipe.load_lora_weights(str(path), adapter_name=adapter, unet_config=self.pipe.unet.config)
        self.loaded[adapter] = path

    def _component_weights(self, te: float, unet: float) -> float | dict[str, float]:
        """One weight, or diffusers' per-component form when the text encoders' weight differs."""
        if te == unet:
            return unet
        encoders = [n for n in ("text_encoder", "text_encoder_2") if getattr(self.pipe, n, None) is not None]
        return {"unet": unet, **dict.fromkeys(encoders, te)}

    def apply(self, refs: list[tuple[str, float, float]], files: dict[str, Path]) -> Applied:
        """Activate exactly the LoRAs in ``refs`` (name, text-encoder weight, UNet weight); everything
        else is switched off."""
        out = Applied()
        names: list[str] = []
        weights: list[tuple[float, float]] = []
        for name, te_weight, unet_weight in refs:
            path = files.get(name.lower())
            if path is None:
                out.warnings.append((f"找不到 LoRA「{name}」（models/Lora 里没有同名文件），已忽略。",
                                     f"LoRA '{name}' not found in models/Lora; ignored."))  # fmt: skip
                continue
            adapter = _adapter_name(path)
            if adapter not in self.loaded and path not in self.failed:
                family = lora_family(path)
                if self.family and family and family != self.family:
                    self.failed[path] = (f"是 {family} 的，当前模型是 {self.family}，已忽略。请换用 {self.family} 的 LoRA。",
                                         f"is for {family} and the model is {self.family}; ignored. Use a {self.family} LoRA.")  # fmt: skip
                else:
                    try:
                        self._load(adapter, path)
                    except Exception as e:  # peft/diffusers raise several types for a LoRA of another architecture
                        log.warning("LoRA %s could not be loaded: %s", path, e)
                        reason = _first_line(e)
                        self.failed[path] = (f"无法用于当前模型（可能是其他架构的），已忽略：{reason}",
                                             f"does not fit this model (another architecture?); ignored: {reason}")  # fmt: skip
            if path in self.failed:
                zh, en = self.failed[path]
                out.warnings.append((f"LoRA「{name}」{zh}", f"LoRA '{name}' {en}"))
                continue
            if adapter in names:  # named twice: the weights add up, as A1111's do
                te, unet = weights[names.index(adapter)]
                weights[names.index(adapter)] = (te + te_weight, unet + unet_weight)
                continue
            names.append(adapter)
            weights.append((te_weight, unet_weight))
            out.names.append(name)
            out.hashes[name] = self._hash(path)
        if names:
            self.pipe.enable_lora()
            self.pipe.set_adapters(names, [self._component_weights(te, unet) for te, unet in weights])
            self.active = True
        elif self.active:
            self.pipe.disable_lora()
            self.active = False
        return out
