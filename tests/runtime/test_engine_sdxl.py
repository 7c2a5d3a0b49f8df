"""The engine on the tiny random SDXL model, on the CPU: the SDXL path end to end.

The bundle holds the tiny SD 1.x model (``tiny``, with its LoRA and embedding ``tinyemb``)
and the tiny SDXL one (``tiny-xl``, with its two-encoder embedding ``tinyxlemb`` and its
kohya-format LoRA ``tiny-xl-lora``; see :mod:`tests.support.tiny_sdxl`).  The engine starts
on ``tiny-xl``; a test that loads another model puts it back.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.engine import Engine
from runtime.pnginfo import parse_parameters, read_parameters
from runtime.request import GenerationRequest
from tests.runtime.conftest import make_bundle
from tests.support.tiny_sd import TinySD
from tests.support.tiny_sdxl import (
    CROSS_ATTENTION_DIM,
    POOLED_WIDTH,
    TEXT_WIDTH,
    TinySDXL,
    build_tiny_sdxl,
    build_tiny_sdxl_pipeline,
    kohya_sdxl_lora_targets,
)

XL = "tiny-xl"
XL_LORA = "tiny-xl-lora"
XL_ADAPTER = "lora_tiny_xl_lora"  # runtime.lora's adapter name for the file
SMALL = {"steps": 4, "width": 64, "height": 64}
LONG_PROMPT = "cat " * 75  # 75 tokens: exactly one chunk


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory: pytest.TempPathFactory) -> TinySDXL:
    return build_tiny_sdxl(tmp_path_factory.mktemp("tiny_sdxl"))


@pytest.fixture(scope="module")
def xl_engine(tiny_sd: TinySD, tiny_sdxl: TinySDXL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bundle-xl")
    bundle = make_bundle(root, tiny_sd)
    shutil.copytree(tiny_sdxl.diffusers_dir, root / "models" / "Stable-diffusion" / XL)
    shutil.copy(tiny_sdxl.embedding, root / "models" / "embeddings" / "tinyxlemb.safetensors")
    shutil.copy(tiny_sdxl.lora, root / "models" / "Lora" / f"{XL_LORA}.safetensors")
    e = Engine(bundle)
    e.load(XL)
    yield e


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def gen(engine: Engine, **kw: Any) -> Any:
    return engine.generate(GenerationRequest(**{**SMALL, "save_images": False, **kw}))


def differ(a: Any, b: Any) -> bool:
    return bool((pixels(a.images[0]) != pixels(b.images[0])).any())


# --- loading ----------------------------------------------------------------------------------------------------


def test_the_model_is_loaded_as_sdxl(xl_engine: Engine) -> None:
    from diffusers import StableDiffusionXLPipeline

    model = xl_engine.model
    assert model is not None
    assert model.architecture == "sdxl" and model.is_sdxl
    assert isinstance(model.pipe, StableDiffusionXLPipeline)
    assert model.checkpoint.model_name == XL
    assert model.pipe.unet.config.cross_attention_dim == CROSS_ATTENTION_DIM


def test_only_the_sdxl_embedding_is_registered_in_both_tokenizers(xl_engine: Engine) -> None:
    assert xl_engine.model is not None
    pipe = xl_engine.model.pipe
    assert {"tinyemb", "tinyxlemb"} <= set(xl_engine.view.embeddings)
    for tokenizer in (pipe.tokenizer, pipe.tokenizer_2):
        vocab = tokenizer.get_vocab()
        assert "tinyxlemb" in vocab and "tinyxlemb_1" in vocab  # two vectors
        assert "tinyemb" not in vocab  # SD 1.x width: skipped, as A1111 does


def test_the_sdxl_embedding_is_a_trigger_word(xl_engine: Engine) -> None:
    a = gen(xl_engine, prompt="a tinyxlemb", seed=3)
    b = gen(xl_engine, prompt="a cat", seed=3)
    assert differ(a, b)


# --- txt2img ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(64, 64), (64, 128), (128, 64)])
def test_txt2img_gives_the_requested_size_and_names_the_model(xl_engine: Engine, width: int, height: int) -> None:
    r = gen(xl_engine, prompt="a cat", seed=1, width=width, height=height)
    assert r.images[0].size == (width, height)
    assert np.isfinite(pixels(r.images[0])).all() and pixels(r.images[0]).std() > 0
    fields = parse_parameters(r.infotexts[0])
    assert fields["Model"] == XL
    assert (fields["Size-1"], fields["Size-2"]) == (str(width), str(height))
    assert r.info["sd_model_name"] == XL


def test_saved_images_carry_a1111_pnginfo(xl_engine: Engine) -> None:
    r = xl_engine.generate(GenerationRequest(prompt="a cat", negative_prompt="blurry", seed=77, **SMALL))
    text = read_parameters(r.paths[0])
    assert text == r.infotexts[0]
    fields = parse_parameters(text or "")
    assert fields["Prompt"] == "a cat" and fields["Negative prompt"] == "blurry"
    assert fields["Seed"] == "77" and fields["Model"] == XL


def test_same_seed_same_image_and_another_seed_differs(xl_engine: Engine) -> None:
    a = gen(xl_engine, prompt="a cat", seed=42)
    b = gen(xl_engine, prompt="a cat", seed=42)
    c = gen(xl_engine, prompt="a cat", seed=43)
    assert not differ(a, b)
    assert differ(a, c)


def test_a_batch_reproduces_each_image_alone(xl_engine: Engine) -> None:
    r = gen(xl_engine, prompt="a cat", seed=200, batch_size=2)
    alone = gen(xl_engine, prompt="a cat", seed=201)
    assert r.seeds == [200, 201]
    assert np.abs(pixels(alone.images[0]) - pixels(r.images[1])).max() <= 1  # batched matmuls may round differently


@pytest.mark.parametrize("sampler", ["Euler", "DPM++ 2M Karras", "Heun"])
def test_samplers_run_on_the_sdxl_scheduler_config(xl_engine: Engine, sampler: str) -> None:
    r = gen(xl_engine, prompt="a [cat:dog:0.5]", seed=1, sampler_name=sampler)
    assert np.isfinite(pixels(r.images[0])).all()
    assert parse_parameters(r.infotexts[0])["Sampler"] == sampler.removesuffix(" Karras")


# --- prompts ----------------------------------------------------------------------------------------------------


def test_attention_weights_change_the_image(xl_engine: Engine) -> None:
    plain = gen(xl_engine, prompt="a cat", seed=5)
    weighted = gen(xl_engine, prompt="a (cat:1.5)", seed=5)
    assert differ(plain, weighted)


def test_break_starts_a_chunk_that_changes_the_image(xl_engine: Engine) -> None:
    joined = gen(xl_engine, prompt="a cat a dog", seed=5)
    broken = gen(xl_engine, prompt="a cat BREAK a dog", seed=5)
    assert differ(joined, broken)


def test_tokens_past_75_reach_the_model(xl_engine: Engine) -> None:
    one_chunk = gen(xl_engine, prompt=LONG_PROMPT, seed=5)
    two_chunks = gen(xl_engine, prompt=LONG_PROMPT + "a dog", seed=5)  # diffusers alone would truncate "a dog"
    assert differ(one_chunk, two_chunks)


def test_prompt_editing_swaps_the_text_and_the_pooled_embeddings_mid_run(xl_engine: Engine) -> None:
    import torch

    from runtime.prompts.conditioning import PromptEncoder

    assert xl_engine.model is not None
    unet = xl_engine.model.pipe.unet
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # the positive half of each UNet call: (states, pooled)

    def record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        seen.append((kwargs["encoder_hidden_states"][1].clone(), kwargs["added_cond_kwargs"]["text_embeds"][1].clone()))

    handle = unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        edited = gen(xl_engine, prompt="a [cat:dog:0.5]", seed=6, sampler_name="Euler")
    finally:
        handle.remove()
    cat = gen(xl_engine, prompt="a cat", seed=6, sampler_name="Euler")
    dog = gen(xl_engine, prompt="a dog", seed=6, sampler_name="Euler")
    assert differ(edited, cat) and differ(edited, dog)
    encoder = PromptEncoder.from_pipeline(xl_engine.model.pipe)
    # 4 steps, 0.5 -> entry end 2: the steps with index 0, 1 and 2 read "a cat" (A1111's <=)
    want = [encoder.encode(text) for text in ("a cat", "a cat", "a cat", "a dog")]
    assert len(seen) == len(want)
    for (states, pooled), encoding in zip(seen, want, strict=True):
        assert encoding.pooled is not None
        assert torch.allclose(states, encoding.embeds[0], atol=1e-5) and torch.allclose(pooled, encoding.pooled[0])


def test_and_combines_sub_prompts_with_both_encoders_and_their_pooled_embeddings(xl_engine: Engine) -> None:
    cat = gen(xl_engine, prompt="a cat", seed=7)
    both = gen(xl_engine, prompt="a cat AND a dog", seed=7)
    assert differ(cat, both) and not both.warnings
    silent = gen(xl_engine, prompt="a cat AND a dog :0", seed=7)  # weight 0: the dog adds nothing
    assert int(abs(pixels(silent.images[0]) - pixels(cat.images[0])).max()) <= 1


def test_both_encoders_encode_every_chunk_and_the_first_chunk_is_pooled(xl_engine: Engine) -> None:
    import torch

    from runtime.prompts import tokenize_chunks
    from runtime.prompts.conditioning import PromptEncoder

    assert xl_engine.model is not None
    pipe = xl_engine.model.pipe
    encoder = PromptEncoder.from_pipeline(pipe)
    both = encoder.encode("a cat BREAK a dog")
    first = encoder.encode("a cat")
    assert encoder.sdxl and len(encoder.text_encoders) == 2
    assert both.embeds.shape == (1, 2 * 77, CROSS_ATTENTION_DIM)
    assert both.pooled is not None and both.pooled.shape == (1, POOLED_WIDTH)
    # A1111: the pooled embedding comes from the first chunk only (chunks run as a batch: allow rounding)
    assert first.pooled is not None and torch.allclose(both.pooled, first.pooled, atol=1e-5)
    assert torch.allclose(both.embeds[:, :77], first.embeds, atol=1e-5)
    assert not torch.allclose(both.embeds[:, 77:], first.embeds, atol=1e-2)
    # the second chunk went through each encoder: CLIP-L's width first, then OpenCLIP-G's (penultimate layers)
    width = pipe.text_encoder.config.hidden_size
    with torch.no_grad():
        for tokenizer, text_encoder, part in ((pipe.tokenizer, pipe.text_encoder, both.embeds[0, 77:, :width]),
                                              (pipe.tokenizer_2, pipe.text_encoder_2, both.embeds[0, 77:, width:])):  # fmt: skip
            ids = torch.tensor([tokenize_chunks(tokenizer, "a dog")[0].tokens])
            expected = text_encoder(input_ids=ids, output_hidden_states=True).hidden_states[-2][0]
            assert torch.allclose(part, expected, atol=1e-5)


def test_an_empty_negative_prompt_is_zeros_as_in_a1111(xl_engine: Engine) -> None:
    import torch

    from runtime.prompts.conditioning import ConditioningSchedule, PromptEncoder

    assert xl_engine.model is not None
    encoder = PromptEncoder.from_pipeline(xl_engine.model.pipe)
    empty = ConditioningSchedule(encoder, "a cat", "", steps=4).at(0)
    assert empty.negative_pooled is not None and not empty.negative.any() and not empty.negative_pooled.any()
    assert empty.positive.any()
    # A1111 zeroes only a negative prompt that is empty at every step; a positive "" is encoded
    edited = ConditioningSchedule(encoder, "", "[:blurry:0.5]", steps=4)
    assert edited.at(0).negative.any() and torch.equal(edited.at(0).negative, edited.at(0).positive)


def test_a_plain_prompt_gives_diffusers_own_sdxl_image(xl_engine: Engine) -> None:
    """No weights, one chunk, empty negative: the engine's embeddings, added conditioning and decoding are diffusers'."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    model = xl_engine.model
    assert model is not None
    ours = gen(xl_engine, prompt="a cat", seed=21, sampler_name="Euler", width=64, height=128)
    # the sampler is A1111's Euler with its own sigmas (runtime/sampling, checked against references in its own
    # tests), so diffusers' pipeline runs with the same scheduler: what is compared is everything around it
    scheduler = model.pipe.scheduler
    pipe = StableDiffusionXLPipeline(**{**model.pipe.components, "scheduler": scheduler}, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(prompt="a cat", num_inference_steps=4, width=64, height=128, guidance_scale=7.0,
                  generator=torch.Generator("cpu").manual_seed(21)).images[0]  # fmt: skip
    assert np.abs(pixels(ours.images[0]) - pixels(theirs)).max() <= 1


def test_negative_prompt_changes_the_image_and_is_recorded(xl_engine: Engine) -> None:
    plain = gen(xl_engine, prompt="a cat", seed=8)
    negative = gen(xl_engine, prompt="a cat", negative_prompt="a dog", seed=8)
    assert differ(plain, negative)
    assert parse_parameters(negative.infotexts[0])["Negative prompt"] == "a dog"


def test_clip_skip_changes_the_image_and_is_recorded(xl_engine: Engine) -> None:
    plain = gen(xl_engine, prompt="a cat", seed=9)
    skipped = gen(xl_engine, prompt="a cat", seed=9, clip_skip=2)
    assert differ(plain, skipped)
    assert parse_parameters(skipped.infotexts[0])["Clip skip"] == "2"


def test_an_sd1_lora_is_a_warning_and_leaves_the_model_alone(xl_engine: Engine) -> None:
    base = gen(xl_engine, prompt="a cat", seed=10)
    with_lora = gen(xl_engine, prompt="a cat <lora:tiny-lora:1>", seed=10)
    assert with_lora.images and any("tiny-lora" in en for _zh, en in with_lora.warnings)
    assert not differ(base, with_lora)


# --- kohya SDXL LoRA --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xl_lora_targets() -> list[tuple[str, str, str, Any]]:
    """(kohya name, component, module name, layer) of each LoRA layer, named on a pipeline without adapters."""
    return list(kohya_sdxl_lora_targets(build_tiny_sdxl_pipeline()))


def first_conditioning(engine: Engine, prompt: str, seed: int) -> tuple[Any, Any, Any]:
    """The image and the positive half of the first UNet call's text states and pooled embedding."""
    assert engine.model is not None
    seen: list[tuple[Any, Any]] = []

    def record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if not seen:
            seen.append(
                (kwargs["encoder_hidden_states"][1].clone(), kwargs["added_cond_kwargs"]["text_embeds"][1].clone())
            )

    handle = engine.model.pipe.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        r = gen(engine, prompt=prompt, seed=seed)
    finally:
        handle.remove()
    return r, *seen[0]


def test_a_kohya_sdxl_lora_changes_the_image_through_both_text_encoders(xl_engine: Engine) -> None:
    import torch

    base, states, pooled = first_conditioning(xl_engine, "a cat", seed=30)
    lora, lora_states, lora_pooled = first_conditioning(xl_engine, f"a cat <lora:{XL_LORA}:1>", seed=30)
    assert not lora.warnings
    assert differ(base, lora)
    # the prompt's states are CLIP-L's columns then OpenCLIP-G's: each encoder's LoRA layers must change its own
    assert not torch.allclose(states[:, :TEXT_WIDTH], lora_states[:, :TEXT_WIDTH], atol=1e-3)
    assert not torch.allclose(states[:, TEXT_WIDTH:], lora_states[:, TEXT_WIDTH:], atol=1e-3)
    assert not torch.allclose(pooled, lora_pooled, atol=1e-3)  # text_encoder_2's pooled projection too


def test_every_layer_of_the_kohya_sdxl_lora_lands_on_its_module(
    xl_engine: Engine, xl_lora_targets: list[tuple[str, str, str, Any]]
) -> None:
    """The sgm UNet names (input/middle/output blocks) and te1/te2 reach the right diffusers layers, as written."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    assert xl_engine.model is not None
    gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:1>", seed=31)
    pipe = xl_engine.model.pipe
    path = xl_engine.view.loras[XL_LORA]
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:  # kohya's metadata, as Civitai files carry it
        assert f.metadata()["ss_base_model_version"] == "sdxl_base_v1-0"
    assert len(xl_lora_targets) * 3 == len(tensors)  # down, up, alpha: the file has nothing else
    per_component: dict[str, int] = {}
    for kohya_name, component, name, _layer in xl_lora_targets:
        module = getattr(pipe, component).get_submodule(name)
        assert XL_ADAPTER in getattr(module, "lora_A", {}), f"{kohya_name} not loaded into {component}.{name}"
        assert torch.equal(module.lora_A[XL_ADAPTER].weight, tensors[f"{kohya_name}.lora_down.weight"])
        assert torch.equal(module.lora_B[XL_ADAPTER].weight, tensors[f"{kohya_name}.lora_up.weight"])
        assert module.scaling[XL_ADAPTER] == pytest.approx(1.0)  # weight 1 x alpha 4 / rank 4
        per_component[component] = per_component.get(component, 0) + 1
    assert set(per_component) == {"unet", "text_encoder", "text_encoder_2"}


def test_the_sdxl_lora_weight_reaches_all_three_models(
    xl_engine: Engine, xl_lora_targets: list[tuple[str, str, str, Any]]
) -> None:
    assert xl_engine.model is not None
    full = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:1>", seed=32)
    half = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:0.5>", seed=32)
    assert differ(full, half)
    pipe = xl_engine.model.pipe
    for _kohya_name, component, name, _layer in xl_lora_targets:  # unet, text_encoder and text_encoder_2 alike
        module = getattr(pipe, component).get_submodule(name)
        assert module.scaling[XL_ADAPTER] == pytest.approx(0.5), f"{component}.{name}"


def test_the_text_encoder_and_unet_weights_of_a_lora_tag_are_both_applied(
    xl_engine: Engine, xl_lora_targets: list[tuple[str, str, str, Any]]
) -> None:
    """A1111's <lora:name:te:unet>: the second weight is the UNet's, the first the text encoders'."""
    assert xl_engine.model is not None
    both = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:0.3:0.7>", seed=35)
    assert not both.warnings
    pipe = xl_engine.model.pipe
    for _kohya_name, component, name, _layer in xl_lora_targets:
        want = 0.7 if component == "unet" else 0.3
        assert getattr(pipe, component).get_submodule(name).scaling[XL_ADAPTER] == pytest.approx(want), component
    named = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:te=0.3:unet=0.7>", seed=35)
    assert not differ(both, named)
    bad = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:strong>", seed=35)
    assert any("is not a number" in en for _zh, en in bad.warnings)
    assert not differ(bad, gen(xl_engine, prompt="a cat", seed=35))  # the tag left the text, as in A1111


def test_the_sdxl_lora_unloads_to_the_exact_base_image(xl_engine: Engine) -> None:
    try:
        xl_engine.load("tiny")
    finally:
        xl_engine.load(XL)  # a fresh SDXL pipeline that has never seen a LoRA
    assert xl_engine.lora is not None and not xl_engine.lora.loaded
    base = gen(xl_engine, prompt="a cat", seed=33)
    with_lora = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:1>", seed=33)
    assert XL_ADAPTER in xl_engine.lora.loaded
    after = gen(xl_engine, prompt="a cat", seed=33)
    assert differ(base, with_lora)
    assert not differ(base, after)  # bit for bit


def test_the_sdxl_lora_hash_is_recorded_as_civitai_matches_it(xl_engine: Engine) -> None:
    r = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:0.8>", seed=34)
    data = xl_engine.view.loras[XL_LORA].read_bytes()
    header = int.from_bytes(data[:8], "little")
    autov3 = hashlib.sha256(data[8 + header :]).hexdigest()[:12]  # the tensors without the safetensors header
    fields = parse_parameters(r.infotexts[0])
    assert fields["Lora hashes"].strip('"') == f"{XL_LORA}: {autov3}"
    assert fields["Prompt"] == f"a cat <lora:{XL_LORA}:0.8>"  # recorded as written


def test_an_sdxl_lora_on_the_sd1_model_is_a_short_warning_and_leaves_it_usable(xl_engine: Engine) -> None:
    try:
        xl_engine.load("tiny")
        base = gen(xl_engine, prompt="a cat", seed=35)
        with_xl_lora = gen(xl_engine, prompt=f"a cat <lora:{XL_LORA}:1>", seed=35)
        assert with_xl_lora.images and not differ(base, with_xl_lora)
        warnings = [en for _zh, en in with_xl_lora.warnings]
        assert len(warnings) == 1 and XL_LORA in warnings[0]
        assert len(warnings[0]) < 500  # a message for a person, not every mismatched tensor
        assert "Lora hashes" not in with_xl_lora.infotexts[0]
        sd1_lora = gen(xl_engine, prompt="a cat <lora:tiny-lora:1>", seed=35)  # the failed load left no debris
        assert not sd1_lora.warnings and differ(base, sd1_lora)
        assert not differ(base, gen(xl_engine, prompt="a cat", seed=35))
    finally:
        xl_engine.load(XL)


# --- img2img and hires fix --------------------------------------------------------------------------------------


def test_img2img_keeps_the_size_starts_from_the_image_and_runs_a1111s_steps(
    xl_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = {"width": 64, "height": 128}
    cat = gen(xl_engine, prompt="a cat", seed=2, **size).images[0]
    dog = gen(xl_engine, prompt="a dog", seed=3, **size).images[0]
    steps_seen: list[int] = []
    real = xl_engine.progress.step
    monkeypatch.setattr(xl_engine.progress, "step", lambda done: (steps_seen.append(done), real(done)))
    low = gen(xl_engine, prompt="a bird", seed=4, steps=10, init_images=[cat], denoising_strength=0.3, **size)
    assert max(steps_seen) == 4  # A1111 1.10: img2img runs int(steps x strength) + 1
    other = gen(xl_engine, prompt="a bird", seed=4, steps=10, init_images=[dog], denoising_strength=0.3, **size)
    high = gen(xl_engine, prompt="a bird", seed=4, steps=10, init_images=[cat], denoising_strength=0.9, **size)
    assert low.images[0].size == other.images[0].size == high.images[0].size == (64, 128)
    assert differ(low, other)  # the init image matters
    assert differ(low, high)  # and so does the strength
    assert "Denoising strength: 0.3" in low.infotexts[0] and low.info["denoising_strength"] == 0.3


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_hires_fix_doubles_the_size(xl_engine: Engine, upscaler: str) -> None:
    r = gen(xl_engine, prompt="a cat", seed=11, width=64, height=128, enable_hr=True, hr_scale=2,
            hr_upscaler=upscaler, hr_second_pass_steps=2)  # fmt: skip
    assert r.images[0].size == (128, 256)
    fields = parse_parameters(r.infotexts[0])
    assert fields["Hires upscaler"] == upscaler and fields["Hires upscale"] == "2"
    assert (fields["Size-1"], fields["Size-2"]) == ("64", "128")  # A1111 records the first pass's size


# --- switching models -------------------------------------------------------------------------------------------


def test_switching_between_sd1_and_sdxl_in_one_engine(xl_engine: Engine) -> None:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    before = gen(xl_engine, prompt="a cat", seed=12)
    try:
        xl_engine.load("tiny")
        assert xl_engine.model is not None and not xl_engine.model.is_sdxl
        assert type(xl_engine.model.pipe) is StableDiffusionPipeline
        sd1 = gen(xl_engine, prompt="a cat tinyemb <lora:tiny-lora:1>", seed=12)
        assert parse_parameters(sd1.infotexts[0])["Model"] == "tiny" and not sd1.warnings
        vocab = xl_engine.model.pipe.tokenizer.get_vocab()
        assert "tinyemb" in vocab and "tinyxlemb" not in vocab
        hires = gen(xl_engine, prompt="a cat", seed=12, enable_hr=True, hr_second_pass_steps=2)  # img2img pipe too
        assert hires.images[0].size == (128, 128)
    finally:
        xl_engine.load(XL)
    assert xl_engine.model is not None and xl_engine.model.is_sdxl
    assert isinstance(xl_engine.model.pipe, StableDiffusionXLPipeline)
    after = gen(xl_engine, prompt="a cat", seed=12)
    assert parse_parameters(after.infotexts[0])["Model"] == XL
    assert not differ(before, after)
    assert gen(xl_engine, prompt="a cat", seed=12, enable_hr=True, hr_second_pass_steps=2).images[0].size == (128, 128)


def test_a_diffusers_folder_given_by_path_loads_as_sdxl(xl_engine: Engine) -> None:
    from runtime.checkpoints import describe_path, load_checkpoint

    folder = Path(xl_engine.bundle.models_dir) / "Stable-diffusion" / XL
    loaded = load_checkpoint(describe_path(folder), xl_engine.configs_root)
    assert loaded.architecture == "sdxl" and loaded.is_sdxl
