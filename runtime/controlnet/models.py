"""ControlNet model files: where they are, their names as the extension shows them, and loading them.

Files are read from ``models/ControlNet`` (A1111's folder) and from the extension's own
``extensions/sd-webui-controlnet/models`` when a user kept that layout.  A model is named as the
extension names it, ``control_v11p_sd15_canny [d14c016b]``: the file's stem and A1111's short file hash
(sha256 of 64 KiB at offset 1 MiB, first 8 hex digits), so API calls copied from tutorials match.

Two layouts load: lllyasviel's original one (``control_model.*`` keys, the ControlNet 1.0/1.1 files for
SD 1.5) and diffusers' (``controlnet_cond_embedding.*``, most SDXL ControlNets).  The network's shape is
taken from the checkpoint the user draws with (a ControlNet copies its UNet's encoder), so no config is
fetched: a file that does not fit that checkpoint is refused with a message naming both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.errors import ExitCode, YijianError

SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
FOLDERS = (("models", "ControlNet"), ("extensions", "sd-webui-controlnet", "models"))


class ControlNetModelNotFound(YijianError):
    code = "CONTROLNET_MODEL_NOT_FOUND"
    exit_code = ExitCode.USAGE
    zh = "找不到 ControlNet 模型「{name}」。已有：{valid}"
    en = "No ControlNet model {name!r}. Available: {valid}"
    hint_zh = "把模型文件放进 models/ControlNet，然后刷新列表。"
    hint_en = "Put the model file in models/ControlNet and refresh the list."


class ControlNetModelMismatch(YijianError):
    code = "CONTROLNET_MODEL_MISMATCH"
    exit_code = ExitCode.USAGE
    zh = "ControlNet 模型「{name}」与当前大模型（{architecture}）不匹配：{detail}"
    en = "The ControlNet model {name!r} does not fit the loaded checkpoint ({architecture}): {detail}"
    hint_zh = "SD 1.5 的大模型用 SD 1.5 的 ControlNet（文件名常含 sd15），SDXL 用 SDXL 的（常含 xl）。"
    hint_en = "Use SD 1.5 ControlNets (names often contain sd15) with SD 1.5 checkpoints, SDXL ones (xl) with SDXL."


def short_hash(path: Path) -> str:
    """A1111's old model hash: sha256 of 0x10000 bytes from offset 0x100000, first 8 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(0x100000)
        digest.update(fh.read(0x10000))
    return digest.hexdigest()[:8]


@dataclass(frozen=True)
class ControlNetFile:
    path: Path

    @property
    def name(self) -> str:
        return f"{self.path.stem} [{short_hash(self.path)}]"


def model_folders(root: Path) -> list[Path]:
    return [root.joinpath(*parts) for parts in FOLDERS]


def list_models(folders: Iterable[Path]) -> list[ControlNetFile]:
    """Every ControlNet file, sorted by name; a stem in two folders is listed once (the first folder's)."""
    seen: dict[str, ControlNetFile] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in SUFFIXES and path.is_file() and path.stem.casefold() not in seen:
                seen[path.stem.casefold()] = ControlNetFile(path)
    return sorted(seen.values(), key=lambda f: f.path.stem.casefold())


def find_model(name: str, folders: Iterable[Path]) -> ControlNetFile:
    """The file a unit names: ``stem [hash]`` as listed, or the bare stem, or the file name."""
    models = list_models(folders)
    wanted = name.strip()
    stem = wanted.rsplit(" [", 1)[0] if wanted.endswith("]") else wanted
    for f in models:
        if wanted in (f.name, f.path.name) or stem.casefold() == f.path.stem.casefold():
            return f
    raise ControlNetModelNotFound(name=name, valid=", ".join(f.path.stem for f in models) or "—")


def read_weights(path: Path) -> dict[str, Any]:
    """The state dict, without running pickled code (safetensors, or torch's weights-only loader)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return dict(state.get("state_dict", state)) if isinstance(state, dict) else {}


def is_original_layout(state: dict[str, Any]) -> bool:
    """lllyasviel's layout: ``control_model.*`` (1.0 files), or its bare names (1.1's pruned files)."""
    return any(k.startswith(("control_model.", "input_hint_block.", "zero_convs.", "time_embed.")) for k in state)


def load_controlnet(file: ControlNetFile, unet: Any, architecture: str) -> Any:
    """A diffusers ``ControlNetModel`` for ``file``, shaped after ``unet`` (the loaded checkpoint's)."""
    from diffusers import ControlNetModel
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    state = read_weights(file.path)
    model = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
    if is_original_layout(state):
        state = convert_controlnet_checkpoint(state, dict(model.config))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes differ: another architecture's ControlNet
        raise ControlNetModelMismatch(name=file.name, architecture=architecture, detail=str(e).splitlines()[0][:200]) from e
    if missing or unexpected:
        detail = f"{len(missing)} missing, {len(unexpected)} unexpected weights (e.g. {(missing or unexpected)[0]})"
        raise ControlNetModelMismatch(name=file.name, architecture=architecture, detail=detail)
    return model.to(device=unet.device, dtype=unet.dtype).eval()
