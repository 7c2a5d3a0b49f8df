"""Model files for tests, made from names and shapes alone.

:func:`write_safetensors` writes a valid ``.safetensors`` file whose header
is real and whose tensor bytes are zeros in a sparse file, so an
SDXL-shaped checkpoint costs nothing on disk.  The shape tables are the
keys architecture detection relies on, for each kind of real model; the
byte strings are the wrong contents downloads turn up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

DTYPE_BYTES = {"F16": 2, "F32": 4, "BF16": 2, "I64": 8}

HTML_PAGE = b"<!DOCTYPE html>\n<html lang=en><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n"
LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:e9476a13728cd75d8279f6ec8bad753a66a1957ca375a1464dc63b37db6e3916\n"
    b"size 2132696762\n"
)
JSON_ERROR = b'{"error":"Repository Not Found for url: https://hf-mirror.com/api/models/x/y."}'


def write_safetensors(
    path: Path, tensors: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str] | None = None, dtype: str = "F16"
) -> Path:
    """A valid .safetensors file with these tensor names and shapes, all zeros (sparse)."""
    header: dict[str, object] = {}
    offset = 0
    for name, shape in tensors.items():
        nbytes = math.prod(shape) * DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)
    return path


UNET = "model.diffusion_model."
SD15_CKPT = {
    UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    UNET + "output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    UNET + "out.2.weight": (4, 320, 3, 3),
    "first_stage_model.decoder.conv_in.weight": (512, 4, 3, 3),
    "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
}
SD2_CKPT = {
    UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
    UNET + "out.2.weight": (4, 320, 3, 3),
    "cond_stage_model.model.ln_final.weight": (1024,),
}
SDXL_CKPT = {
    UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
    UNET + "middle_block.1.transformer_blocks.0.attn2.to_k.weight": (1280, 2048),
    UNET + "label_emb.0.0.weight": (1280, 2816),
    "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": (768,),
    "conditioner.embedders.1.model.ln_final.weight": (1280,),
}
SDXL_REFINER = {
    UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (768, 1280),
    UNET + "label_emb.0.0.weight": (1536, 2560),
    "conditioner.embedders.0.model.ln_final.weight": (1280,),
}


def kohya_pair(name: str, rank: int, width_in: int, width_out: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{name}.lora_down.weight": (rank, width_in),
        f"{name}.lora_up.weight": (width_out, rank),
        f"{name}.alpha": (),
    }


SD15_LORA = {
    **kohya_pair("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 8, 768, 320),
    **kohya_pair("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 8, 768, 768),
}
SDXL_LORA = {
    **kohya_pair("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 8, 2048, 640),
    **kohya_pair("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 8, 768, 768),
    **kohya_pair("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 8, 1280, 1280),
}
CONV_ONLY_LORA = kohya_pair("lora_unet_down_blocks_0_resnets_0_conv1", 8, 320, 320)
VAE = {
    "encoder.conv_in.weight": (128, 3, 3, 3),
    "decoder.conv_out.weight": (3, 128, 3, 3),
    "quant_conv.weight": (8, 8, 1, 1),
    "post_quant_conv.weight": (4, 4, 1, 1),
}
ESRGAN = {"conv_first.weight": (64, 3, 3, 3), "body.0.rdb1.conv1.weight": (32, 64, 3, 3)}


def random_safetensors(size: int) -> bytes:
    """``size`` bytes that start as a valid safetensors file (one U8 tensor) and are random after the header:
    content a download can verify and a resume cannot fake, which the downloader's format check accepts."""
    import os

    header = json.dumps({"blob": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}).encode()
    header += b" " * (-len(header) % 8)
    head = len(header).to_bytes(8, "little") + header
    return head + os.urandom(max(0, size - len(head)))
