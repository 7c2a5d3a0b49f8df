"""The tiny SD stand-in works through the real diffusers client, fully offline.

Every artefact of :func:`tests.support.tiny_sd.build_tiny_sd` is loaded the way
the runtime will load it (``from_pretrained``, ``from_single_file`` with a
local ``config=``, ``load_lora_weights``, ``load_textual_inversion``) and must
give a real, reproducible 64x64 image.
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.tiny_sd import CROSS_ATTENTION_DIM, IMAGE_SIZE, TinySD, build_tiny_sd, write_pickle_checkpoint

if TYPE_CHECKING:
    import numpy as np
    from diffusers import StableDiffusionPipeline

PROMPT = "a cat"
STEPS = 3


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, and any socket use at all fails loudly.

    huggingface_hub reads HF_HUB_OFFLINE once, at import, so the constant is patched too; the socket guard also
    catches the copies of it that diffusers and transformers took at their own import.
    """
    import huggingface_hub.constants

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(f"network access in an offline test: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def load(folder: Path) -> StableDiffusionPipeline:
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(folder, local_files_only=True)


def generate(pipe: StableDiffusionPipeline, prompt: str = PROMPT, seed: int = 7) -> np.ndarray:
    import torch

    gen = torch.Generator("cpu").manual_seed(seed)
    pipe.set_progress_bar_config(disable=True)
    result = pipe(prompt, height=IMAGE_SIZE, width=IMAGE_SIZE, num_inference_steps=STEPS, generator=gen,
                  output_type="np")  # fmt: skip
    return result.images[0]


def realign(pipe: StableDiffusionPipeline) -> StableDiffusionPipeline:
    """Copy every weight into fresh memory.

    Weights read from different files sit at different offsets of their memory map; torch's CPU kernels pick code
    paths by alignment, so equal weights can give outputs that differ in the last bits (about 1e-6).
    """
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        for param in part.parameters():
            param.data = param.data.clone()
    return pipe


def safetensors_header(path: Path) -> dict[str, dict[str, object]]:
    """The JSON header of a .safetensors file, read by hand as architecture detection will."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(size))


def test_diffusers_folder_reloads_and_generates_reproducibly(tiny_sd: TinySD) -> None:
    pipe = load(tiny_sd.diffusers_dir)
    first, second = generate(pipe), generate(pipe)
    assert first.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert (first == second).all()
    assert first.std() > 0.01  # a real image, not a constant
    assert not (generate(pipe, seed=8) == first).all()
    assert pipe.scheduler.config.steps_offset == 1


def test_build_is_deterministic_per_seed(tiny_sd: TinySD, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    again, other = build_tiny_sd(tmp_path / "again"), build_tiny_sd(tmp_path / "other", seed=1)
    ours, same, different = (load_file(t.checkpoint) for t in (tiny_sd, again, other))
    assert ours.keys() == same.keys() == different.keys()
    assert all((ours[k] == same[k]).all() for k in ours)
    assert not all((ours[k] == different[k]).all() for k in ours)
    assert load_file(again.lora)["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"].equal(
        load_file(tiny_sd.lora)["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"]
    )


def test_config_dir_has_configs_and_tokenizer_but_no_weights(tiny_sd: TinySD) -> None:
    files = {p.relative_to(tiny_sd.config_dir).as_posix() for p in tiny_sd.config_dir.rglob("*") if p.is_file()}
    assert {"model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
            "scheduler/scheduler_config.json", "tokenizer/tokenizer.json"} <= files  # fmt: skip
    assert not [f for f in files if f.endswith((".safetensors", ".bin"))]
    index = json.loads((tiny_sd.config_dir / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == [None, None]


def test_single_file_loads_offline_with_local_config(tiny_sd: TinySD) -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    single = StableDiffusionPipeline.from_single_file(tiny_sd.checkpoint, config=str(tiny_sd.config_dir),
                                                      local_files_only=True)  # fmt: skip
    base = load(tiny_sd.diffusers_dir)
    compared = 0
    for name in ("unet", "vae", "text_encoder"):
        expected, loaded = getattr(base, name).state_dict(), getattr(single, name).state_dict()
        assert loaded.keys() == expected.keys(), name
        for key, tensor in expected.items():
            assert torch.equal(loaded[key], tensor), f"{name}.{key}"
            compared += 1
    assert compared > 900
    assert (generate(realign(single)) == generate(realign(base))).all()


def test_single_file_without_config_needs_the_hub(tiny_sd: TinySD) -> None:
    """Why the runtime keeps config folders: without ``config=`` diffusers looks for the SD 1.5 repo online."""
    from diffusers import StableDiffusionPipeline
    from huggingface_hub.errors import LocalEntryNotFoundError

    with pytest.raises(LocalEntryNotFoundError):
        StableDiffusionPipeline.from_single_file(tiny_sd.checkpoint, local_files_only=True)


def test_single_file_has_original_layout_keys(tiny_sd: TinySD) -> None:
    header = safetensors_header(tiny_sd.checkpoint)
    keys = set(header) - {"__metadata__"}
    assert {k.split(".")[0] for k in keys} == {"model", "first_stage_model", "cond_stage_model"}
    cross_attention = header["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"]
    assert cross_attention["shape"][1] == CROSS_ATTENTION_DIM
    assert header["model.diffusion_model.input_blocks.0.0.weight"]["shape"][1] == 4  # 4 latent channels: not inpaint
    assert header["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"]["shape"][1] == 32
    assert header["first_stage_model.decoder.mid.attn_1.q.weight"]["shape"][2:] == [1, 1]
    assert "model.diffusion_model.output_blocks.2.1.conv.weight" in keys  # the first upsampler
    assert not [k for k in keys if ".down_blocks." in k or ".text_model.text_model." in k]


def test_lora_changes_output_and_unloads_exactly(tiny_sd: TinySD) -> None:
    pipe = load(tiny_sd.diffusers_dir)
    base = generate(pipe)
    pipe.load_lora_weights(str(tiny_sd.lora), adapter_name="tiny")
    assert pipe.get_list_adapters() == {"unet": ["tiny"], "text_encoder": ["tiny"]}
    for part, prefix in ((pipe.unet, "lora_unet_"), (pipe.text_encoder, "lora_te_")):  # every layer in the file
        wrapped = [name for name, module in part.named_modules() if "tiny" in getattr(module, "lora_A", {})]
        assert len(wrapped) == sum(
            k.startswith(prefix) and k.endswith(".alpha") for k in safetensors_header(tiny_sd.lora)
        )
    with_lora = generate(pipe)
    assert abs(with_lora - base).max() > 0.01
    pipe.set_adapters(["tiny"], [0.5])
    assert not (generate(pipe) == with_lora).all()
    pipe.unload_lora_weights()
    assert (generate(pipe) == base).all()


def test_lora_has_kohya_keys(tiny_sd: TinySD) -> None:
    header = safetensors_header(tiny_sd.lora)
    assert header["__metadata__"]["ss_network_module"] == "networks.lora"
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert f"lora_te_text_model_encoder_layers_1_self_attn_{proj}.lora_down.weight" in header
    assert "lora_te_text_model_encoder_layers_1_mlp_fc2.alpha" in header
    unet_up = header["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight"]
    unet_down = header["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"]
    assert unet_down["shape"] == [4, CROSS_ATTENTION_DIM] and unet_up["shape"] == [8, 4]


def test_embedding_loads_as_textual_inversion(tiny_sd: TinySD) -> None:
    from safetensors.torch import load_file

    vectors = load_file(tiny_sd.embedding)["emb_params"]
    assert vectors.shape == (2, CROSS_ATTENTION_DIM)
    pipe = load(tiny_sd.diffusers_dir)
    base = generate(pipe, "a <tiny> cat")
    pipe.load_textual_inversion(str(tiny_sd.embedding), token="<tiny>")
    ids = pipe.tokenizer.convert_tokens_to_ids(["<tiny>", "<tiny>_1"])
    table = pipe.text_encoder.get_input_embeddings().weight
    assert table[ids].equal(vectors)
    assert not (generate(pipe, "a <tiny> cat") == base).all()


def test_pickle_checkpoint_holds_the_same_weights(tiny_sd: TinySD, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    ckpt = write_pickle_checkpoint(tiny_sd, tmp_path / "tiny-sd15.ckpt")
    assert ckpt.read_bytes()[:2] == b"PK"  # torch's zip container, with a pickle inside
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    expected = load_file(tiny_sd.checkpoint)
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)
