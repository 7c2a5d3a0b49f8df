"""Which kind of model a file is, and for which Stable Diffusion architecture, from its keys and shapes.

Nothing is loaded: single files are judged from their safetensors header
(names, shapes, ``__metadata__``), diffusers folders from ``unet/config.json``.
The deciding number is the UNet's cross-attention width, the text encoder's
output size: 768 for SD 1.x (CLIP-L), 1024 for SD 2.x (OpenCLIP-H), 2048 for
SDXL (CLIP-L + OpenCLIP-G).  A width we do not know is reported as such
(``unknown (cross-attention 32)`` for the test suite's tiny model) rather
than guessed.

SD 2.x comes as 512-base (epsilon prediction) and 768-v (v prediction), and
the weights alone cannot tell them apart: a ``v_pred`` key (written by
ComfyUI), ModelSpec metadata or a diffusers scheduler config decide it when
present; otherwise the answer is ``sd2`` with ``v_prediction`` None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.models.safetensors_header import SafetensorsHeader

KINDS = ("checkpoint", "lora", "vae", "embedding", "upscaler")
ARCHITECTURES = ("sd15", "sd2", "sd2-v", "sdxl")
BY_CONTEXT_WIDTH = {768: "sd15", 1024: "sd2", 2048: "sdxl"}

UNET_PREFIX = "model.diffusion_model."
_UNET_CONTEXT = re.compile(r"^model\.diffusion_model\..*\.attn2\.to_k\.weight$")
_LORA_CONTEXT = re.compile(r"^lora_unet_.*attn2_to_k\.lora_down\.weight$")
_VAE_PREFIXES = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
_UPSCALER_KEYS = ("conv_first.weight", "model.0.weight", "params_ema.conv_first.weight")
_VPRED_SPEC = ("stable-diffusion-v2-768-v",)


@dataclass(frozen=True)
class Detection:
    """What a model is.  ``architecture`` is one of :data:`ARCHITECTURES`, ``"unknown"`` or ``""``.

    ``""`` means the question does not apply (VAEs are shared by SD 1, 2 and
    XL; upscalers work with any) or could not be asked (unknown files).
    ``detail`` explains an ``"unknown"``, e.g. ``cross-attention 32``.
    """

    kind: str  # one of KINDS, or "" when not recognised
    architecture: str
    detail: str = ""
    v_prediction: bool | None = None

    @property
    def label(self) -> str | None:
        """``sd15`` … ``sdxl``, ``unknown (detail)``, or None when it does not apply."""
        if self.architecture == "unknown":
            return f"unknown ({self.detail})" if self.detail else "unknown"
        return self.architecture or None


def _by_width(kind: str, width: int, what: str) -> Detection:
    arch = BY_CONTEXT_WIDTH.get(width)
    if arch is None:
        return Detection(kind, "unknown", f"{what} {width}")
    return Detection(kind, arch)


def _sd2_prediction(header: SafetensorsHeader) -> bool | None:
    if "v_pred" in header.tensors:
        return True
    prediction = header.metadata.get("modelspec.prediction_type", "")
    if prediction:
        return prediction == "v"
    spec = header.metadata.get("modelspec.architecture", "")
    if spec.startswith("stable-diffusion-v2"):
        return spec.startswith(_VPRED_SPEC)
    return None


def _checkpoint(header: SafetensorsHeader) -> Detection:
    widths = {
        shape[1] for key, info in header.tensors.items() if _UNET_CONTEXT.match(key) and len(shape := info.shape) == 2
    }
    sdxl_keys = any(k.startswith("conditioner.embedders.1.") for k in header.tensors) or (
        UNET_PREFIX + "label_emb.0.0.weight" in header.tensors
    )
    if len(widths) > 1:
        return Detection("checkpoint", "unknown", "mixed cross-attention widths " + "/".join(map(str, sorted(widths))))
    if not widths:
        return Detection("checkpoint", "unknown", "no cross-attention")
    found = _by_width("checkpoint", widths.pop(), "cross-attention")
    if found.architecture == "sdxl" and not sdxl_keys:
        return Detection("checkpoint", "unknown", "cross-attention 2048 without SDXL conditioning")
    if found.architecture == "sd2":
        v = _sd2_prediction(header)
        return Detection("checkpoint", "sd2-v" if v else "sd2", v_prediction=v)
    if "v_pred" in header.tensors:  # e.g. v-prediction SDXL fine-tunes saved by ComfyUI
        return Detection(found.kind, found.architecture, found.detail, v_prediction=True)
    return found


def _lora_from_metadata(metadata: Mapping[str, str]) -> str | None:
    version = metadata.get("ss_base_model_version", "")
    spec = metadata.get("modelspec.architecture", "")
    if version.startswith("sdxl_") or spec.startswith("stable-diffusion-xl"):
        return "sdxl"
    if version.startswith("sd_v2") or metadata.get("ss_v2") == "True" or spec.startswith("stable-diffusion-v2"):
        v = metadata.get("ss_v_parameterization") == "True" or spec.startswith(_VPRED_SPEC)
        return "sd2-v" if v else "sd2"
    if version.startswith("sd_v1") or spec.startswith("stable-diffusion-v1"):
        return "sd15"
    return None


def _lora(header: SafetensorsHeader) -> Detection:
    widths = {
        info.shape[1] for key, info in header.tensors.items() if _LORA_CONTEXT.match(key) and len(info.shape) == 2
    }
    if len(widths) == 1:
        width = widths.pop()
        if width not in BY_CONTEXT_WIDTH:
            return Detection("lora", "unknown", f"cross-attention {width}")
        by_meta = _lora_from_metadata(header.metadata)
        arch = BY_CONTEXT_WIDTH[width]
        return Detection("lora", by_meta if by_meta and by_meta.startswith(arch) else arch)
    if any(k.startswith(("lora_te1_", "lora_te2_")) for k in header.tensors):
        return Detection("lora", "sdxl")
    by_meta = _lora_from_metadata(header.metadata)
    return Detection("lora", by_meta) if by_meta else Detection("lora", "unknown", "no base model recorded")


def _embedding_key(keys: Mapping[str, object]) -> str | None:
    """The vector of an A1111 textual-inversion embedding (``emb_params``, ``string_to_param.*``, ``clip_l``/``clip_g``)."""
    for key in ("emb_params", "clip_l", "clip_g"):
        if key in keys:
            return key
    return next((k for k in keys if k.startswith("string_to_param")), None)


def _embedding(header: SafetensorsHeader, key: str) -> Detection:
    if key in ("clip_l", "clip_g"):  # SDXL embeddings hold one vector per text encoder
        return Detection("embedding", "sdxl")
    shape = header.tensors[key].shape
    if not shape:
        return Detection("embedding", "unknown", "no vector width")
    return _by_width("embedding", shape[-1], "width")


def is_lora_key(key: str) -> bool:
    return key.startswith(("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")) or any(
        part in key for part in (".lora_down.", ".lora.down.", ".lora_A.")
    )


def detect_header(header: SafetensorsHeader) -> Detection:
    """The kind and architecture of a single-file model, from its parsed header."""
    keys = header.tensors
    if any(k.startswith(UNET_PREFIX) for k in keys):
        return _checkpoint(header)
    if any(is_lora_key(k) for k in keys):
        return _lora(header)
    embedding = _embedding_key(keys)
    if embedding is not None:
        return _embedding(header, embedding)
    if keys and all(k.startswith(_VAE_PREFIXES) for k in keys):
        return Detection("vae", "")
    if any(k in keys for k in _UPSCALER_KEYS):
        return Detection("upscaler", "")
    return Detection("", "unknown", "unrecognised layout")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_diffusers_folder(folder: Path) -> bool:
    return (folder / "model_index.json").is_file()


def detect_diffusers(folder: Path) -> Detection:
    """The architecture of a diffusers pipeline folder, from ``unet/config.json`` (and the scheduler's)."""
    unet = _read_json(folder / "unet" / "config.json")
    width = unet.get("cross_attention_dim")
    if not isinstance(width, int) or isinstance(width, bool):
        return Detection("checkpoint", "unknown", "no unet/config.json" if not unet else "no cross-attention width")
    found = _by_width("checkpoint", width, "cross-attention")
    if found.architecture == "sdxl" and unet.get("addition_embed_type") != "text_time":
        return Detection("checkpoint", "unknown", "cross-attention 2048 without SDXL conditioning")
    if found.architecture == "sd2":
        scheduler = _read_json(folder / "scheduler" / "scheduler_config.json")
        prediction = scheduler.get("prediction_type")
        v = None if prediction is None else prediction == "v_prediction"
        return Detection("checkpoint", "sd2-v" if v else "sd2", v_prediction=v)
    return found
