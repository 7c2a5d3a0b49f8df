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


def _adapter_name(path: Path) -> str:
    return "lora_" + re.sub(r"\W", "_", path.stem)


class LoraSet:
    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.loaded: dict[str, Path] = {}  # adapter name -> file
        self.failed: set[Path] = set()
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

    def apply(self, refs: list[tuple[str, float]], files: dict[str, Path]) -> Applied:
        """Activate exactly the LoRAs in ``refs`` (name, weight); everything else is switched off."""
        out = Applied()
        names: list[str] = []
        weights: list[float] = []
        for name, weight in refs:
            path = files.get(name.lower())
            if path is None:
                out.warnings.append((f"找不到 LoRA「{name}」（models/Lora 里没有同名文件），已忽略。",
                                     f"LoRA '{name}' not found in models/Lora; ignored."))  # fmt: skip
                continue
            adapter = _adapter_name(path)
            if adapter not in self.loaded:
                if path in self.failed:
                    continue
                try:
                    self._load(adapter, path)
                except Exception as e:  # peft/diffusers raise several types for a LoRA of another architecture
                    log.warning("LoRA %s could not be loaded: %s", path, e)
                    self.failed.add(path)
                    out.warnings.append((f"LoRA「{name}」无法用于当前模型（可能是其他架构的），已忽略：{e}",
                                         f"LoRA '{name}' does not fit this model (another architecture?); ignored: {e}"))  # fmt: skip
                    continue
            if adapter in names:
                weights[names.index(adapter)] += weight
                continue
            names.append(adapter)
            weights.append(weight)
            out.names.append(name)
            out.hashes[name] = self._hash(path)
        if names:
            self.pipe.enable_lora()
            self.pipe.set_adapters(names, weights)
            self.active = True
        elif self.active:
            self.pipe.disable_lora()
            self.active = False
        return out
