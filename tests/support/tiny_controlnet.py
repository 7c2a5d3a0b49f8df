"""Tiny random ControlNets for tests (the demo's builder, shaped after a tiny UNet), and a test picture."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.controlnet.demo import random_controlnet as tiny_controlnet
from tests.support.tiny_sd import NO_RENAMES, Prefixes, _rename, _unet_prefixes

__all__ = ["original_layout", "shapes_image", "tiny_controlnet"]


def shapes_image(w: int = 64, h: int = 64) -> np.ndarray:
    """Black, with a white rectangle in the middle half: edges a canny map must find."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
    return img


def _controlnet_prefixes(hint_blocks: int, down_convs: int) -> Prefixes:
    """diffusers' ControlNet names → lllyasviel's: the UNet encoder as in a checkpoint, plus the hint encoder
    (``input_hint_block``: convolutions at even places, SiLUs between) and the zero convolutions."""
    encoder = [p for p in _unet_prefixes() if not p[0].startswith(("up_blocks.", "conv_norm_out.", "conv_out."))]
    out: Prefixes = [("controlnet_cond_embedding.conv_in.", "input_hint_block.0.", NO_RENAMES)]
    out += [(f"controlnet_cond_embedding.blocks.{k}.", f"input_hint_block.{2 * (k + 1)}.", NO_RENAMES)
            for k in range(hint_blocks)]  # fmt: skip
    out.append(("controlnet_cond_embedding.conv_out.", f"input_hint_block.{2 * (hint_blocks + 1)}.", NO_RENAMES))
    out += [(f"controlnet_down_blocks.{i}.", f"zero_convs.{i}.0.", NO_RENAMES) for i in range(down_convs)]
    out.append(("controlnet_mid_block.", "middle_block_out.0.", NO_RENAMES))
    return out + encoder


def original_layout(net: Any, prefix: str = "control_model.") -> dict[str, Any]:
    """A diffusers ControlNet's weights under lllyasviel's names (``prefix`` "": a 1.1 pruned file)."""
    state = net.state_dict()
    hint_blocks = len({k.split(".")[2] for k in state if k.startswith("controlnet_cond_embedding.blocks.")})
    down = len({k.split(".")[1] for k in state if k.startswith("controlnet_down_blocks.")})
    prefixes = _controlnet_prefixes(hint_blocks, down)
    return {prefix + _rename(k, prefixes): v.contiguous() for k, v in state.items()}
