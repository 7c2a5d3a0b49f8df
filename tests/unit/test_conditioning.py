"""Prompt embeddings on the tiny SD 1.x model: chunks, weights, clip skip, schedules, SDXL.

The tiny tokenizer knows bytes and a few merges, so a word of n letters is n tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runtime.prompts import tokenize_chunks
from tests.support.tiny_sd import CROSS_ATTENTION_DIM, TinySD

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

torch = pytest.importorskip("torch")
cond = pytest.importorskip("runtime.prompts.conditioning")

WIDTH = CROSS_ATTENTION_DIM


def load(tiny_sd: TinySD) -> StableDiffusionPipeline:
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd.diffusers_dir, local_files_only=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)  # one UNet call per step
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe(tiny_sd: TinySD) -> StableDiffusionPipeline:
    return load(tiny_sd)


@pytest.fixture
def encoder(pipe: StableDiffusionPipeline) -> Any:
    return cond.PromptEncoder.from_pipeline(pipe)


def token(pipe: StableDiffusionPipeline, text: str) -> int:
    return int(pipe.tokenizer.convert_tokens_to_ids(text))


def test_a_short_prompt_encodes_as_diffusers_does(pipe: StableDiffusionPipeline, encoder: Any) -> None:
    reference, _ = pipe.encode_prompt("a cat, a dog", "cpu", 1, False)
    assert torch.allclose(encoder.encode("a cat, a dog").embeds, reference, atol=1e-6)


def test_a_long_prompt_takes_two_chunks(pipe: StableDiffusionPipeline, encoder: Any) -> None:
    prompt = "x" * 100  # 100 tokens
    chunks = tokenize_chunks(pipe.tokenizer, prompt)
    assert [len(c.tokens) for c in chunks] == [77, 77]
    assert (
        chunks[0].tokens[76] == pipe.tokenizer.eos_token_id
        and chunks[1].tokens.index(pipe.tokenizer.eos_token_id) == 26
    )
    assert encoder.encode(prompt).embeds.shape == (1, 154, WIDTH)


def test_a_full_chunk_breaks_after_its_last_comma(pipe: StableDiffusionPipeline) -> None:
    chunks = tokenize_chunks(pipe.tokenizer, "x" * 70 + ", abcdefghij")  # the comma is token 71
    first, second = (c.tokens for c in chunks)
    assert first[71] == token(pipe, ",</w>") and first[72] == pipe.tokenizer.eos_token_id
    assert second[1] == token(pipe, "a")
    far = tokenize_chunks(pipe.tokenizer, "x" * 40 + ", " + "y" * 60)  # comma too far back: plain cut
    assert far[0].tokens[75] == token(pipe, "y")


def test_break_starts_a_new_chunk(pipe: StableDiffusionPipeline, encoder: Any) -> None:
    chunks = tokenize_chunks(pipe.tokenizer, "a cat BREAK dog")
    assert len(chunks) == 2 and chunks[1].tokens[1] == token(pipe, "d")
    assert encoder.encode("a cat BREAK dog").embeds.shape == (1, 154, WIDTH)
    assert len(tokenize_chunks(pipe.tokenizer, "a cat BREAK")) == 1


def test_weights_change_the_embeddings_but_keep_the_mean(pipe: StableDiffusionPipeline, encoder: Any) -> None:
    chunk = tokenize_chunks(pipe.tokenizer, "a (cat:1.5) [dog]")[0]
    assert chunk.weights[:4] == (1.0, 1.0, 1.5, pytest.approx(1 / 1.1))
    plain, weighted = encoder.encode("a cat dog").embeds, encoder.encode("a (cat:1.5) [dog]").embeds
    assert not torch.allclose(plain, weighted)
    assert weighted.mean().item() == pytest.approx(plain.mean().item(), rel=1e-4, abs=1e-6)
    assert torch.equal(encoder.encode("a (cat:1) dog").embeds, plain)
    # A1111's "No norm": the weights multiply the states and nothing restores the mean
    no_norm = cond.PromptEncoder.from_pipeline(pipe, emphasis="No norm").encode("a (cat:1.5) [dog]").embeds
    scale = torch.tensor(chunk.weights).reshape(1, -1, 1)
    assert torch.allclose(no_norm, plain * scale, atol=1e-6)
    # "Ignore": brackets read, weights dropped; "None": the brackets are text for the encoder
    assert torch.equal(cond.PromptEncoder.from_pipeline(pipe, emphasis="Ignore").encode("a (cat:1.5) [dog]").embeds, plain)
    none = cond.PromptEncoder.from_pipeline(pipe, emphasis="None").encode("a (cat:1.5) [dog]").embeds
    assert not torch.allclose(none, plain)


def test_clip_skip_2_is_the_normed_penultimate_layer(pipe: StableDiffusionPipeline, encoder: Any) -> None:
    ids = torch.tensor([tokenize_chunks(pipe.tokenizer, "a cat")[0].tokens])
    with torch.no_grad():
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states
        expected = pipe.text_encoder.final_layer_norm(hidden[-2])
    skipped = encoder.encode("a cat", clip_skip=2).embeds
    assert torch.allclose(skipped, expected, atol=1e-6)
    assert not torch.allclose(skipped, encoder.encode("a cat", clip_skip=1).embeds)


def test_positive_and_negative_are_padded_with_empty_chunks(encoder: Any) -> None:
    schedule = cond.ConditioningSchedule(encoder, "x" * 100, "blurry", steps=4)
    step = schedule.at(0)
    assert step.positive.shape == step.negative.shape == (1, 154, WIDTH)
    assert torch.equal(step.negative[:, 77:], encoder.encode("").embeds)
    assert step.pooled is None and schedule.is_static and schedule.callback_tensor_inputs == ["prompt_embeds"]


def test_the_schedule_switches_at_the_right_step(pipe: StableDiffusionPipeline, encoder: Any) -> None:
    calls: list[int] = []
    hook = pipe.text_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        schedule = cond.ConditioningSchedule(encoder, "a [cat:dog:2] " + "z" * 80, "[ugly|bad]", steps=4)
    finally:
        hook.remove()
    assert len(calls) == 5  # "a cat ...", "a dog ...", "ugly", "bad", "": each once
    steps = [schedule.at(i) for i in range(4)]
    assert {s.positive.shape for s in steps} | {s.negative.shape for s in steps} == {(1, 154, WIDTH)}
    cat, dog = encoder.encode("a cat " + "z" * 80).embeds, encoder.encode("a dog " + "z" * 80).embeds
    assert [torch.equal(s.positive, cat) for s in steps] == [True, True, True, False]  # 0-based step <= 2
    assert torch.equal(steps[3].positive, dog)
    assert torch.equal(steps[1].negative[:, :77], encoder.encode("ugly").embeds)  # A1111: ugly, ugly, bad, ugly
    assert torch.equal(steps[2].negative[:, :77], encoder.encode("bad").embeds)
    assert schedule.at(9) is schedule.at(8) and not schedule.is_static  # past the end: the last entry


def test_the_callback_swaps_the_embeddings_in_the_pipeline(pipe: StableDiffusionPipeline, encoder: Any) -> None:
    schedule = cond.ConditioningSchedule(encoder, "a [cat:dog:1]", "bad", steps=3)
    seen: list[Any] = []  # the UNet's encoder_hidden_states at each call
    later: list[int] = []

    def progress(_pipe: Any, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        later.append(i)
        return kwargs

    hook = pipe.unet.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(kwargs["encoder_hidden_states"].clone()), with_kwargs=True
    )
    try:
        pipe(
            **schedule.at(0).pipeline_kwargs(),
            num_inference_steps=3,
            num_images_per_prompt=2,
            output_type="latent",
            callback_on_step_end=cond.swap_callback(schedule, then=progress),
            callback_on_step_end_tensor_inputs=schedule.callback_tensor_inputs,
        )
    finally:
        hook.remove()
    assert later == [0, 1, 2]
    assert [tuple(s.shape) for s in seen] == [(4, 77, WIDTH)] * 3  # [negative x2, positive x2]
    for i, batch in enumerate(seen):
        step = schedule.at(i)
        assert torch.allclose(batch[0], step.negative[0]) and torch.allclose(batch[3], step.positive[0])
    assert not torch.allclose(seen[1][3], seen[2][3])


def test_a_batch_pads_every_prompt_to_one_shape(encoder: Any) -> None:
    schedule = cond.ConditioningSchedule(encoder, ["a [cat|dog]", "z" * 100], "bad", steps=3)
    steps = [schedule.at(i) for i in range(3)]
    assert {s.positive.shape for s in steps} | {s.negative.shape for s in steps} == {(2, 154, WIDTH)}
    first, second = steps[0].positive, steps[2].positive  # A1111's alternation: cat, cat, dog
    assert torch.equal(first[0, :77], encoder.encode("a cat").embeds[0])
    assert torch.equal(second[0, :77], encoder.encode("a dog").embeds[0])
    assert torch.equal(first[1], second[1]) and torch.equal(first[0, 77:], encoder.encode("").embeds[0])
    assert schedule.for_hires_pass(5).at(4).positive.shape == (2, 154, WIDTH)
    with pytest.raises(ValueError, match="one negative prompt"):
        cond.ConditioningSchedule(encoder, ["a", "b", "c"], ["x", "y"], steps=3)


def test_update_for_step_only_touches_changed_steps(encoder: Any) -> None:
    schedule = cond.ConditioningSchedule(encoder, "a [cat:dog:2]", "bad", steps=4)
    held = torch.zeros(4, 77, WIDTH, dtype=torch.float64)  # guided, two images per prompt
    assert schedule.update_for_step(2, {"prompt_embeds": held}, guided=True)["prompt_embeds"] is held
    swapped = schedule.update_for_step(3, {"prompt_embeds": held}, guided=True)["prompt_embeds"]
    assert swapped.shape == held.shape and swapped.dtype == torch.float64
    dog, bad = encoder.encode("a dog").embeds[0].double(), encoder.encode("bad").embeds[0].double()
    assert all(torch.equal(swapped[i], bad) for i in (0, 1)) and all(torch.equal(swapped[i], dog) for i in (2, 3))
    unguided = schedule.update_for_step(3, {"prompt_embeds": held[:1]}, guided=False)["prompt_embeds"]
    assert unguided.shape == (1, 77, WIDTH) and torch.equal(unguided[0], dog)


def test_textual_inversion_tokens_expand_to_all_vectors(tiny_sd: TinySD) -> None:
    own = load(tiny_sd)
    own.load_textual_inversion(str(tiny_sd.embedding), token="tinyemb")
    tokens = tokenize_chunks(own.tokenizer, "a tinyemb")[0].tokens
    assert tokens[2:4] == (token(own, "tinyemb"), token(own, "tinyemb_1"))
    assert cond.PromptEncoder.from_pipeline(own).encode("(tinyemb:1.2)").embeds.shape == (1, 77, WIDTH)


# --- SDXL: two encoders built from the tiny tokenizer ----------------------------------------------


def sdxl_parts(tokenizer_dir: Path) -> tuple[list[Any], list[Any]]:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    one = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    two = CLIPTokenizer.from_pretrained(str(tokenizer_dir), pad_token="!")  # as SDXL's second tokenizer
    vocab = one.get_vocab()

    def config(width: int) -> CLIPTextConfig:
        return CLIPTextConfig(
            hidden_size=width, intermediate_size=37, num_attention_heads=4, num_hidden_layers=3, projection_dim=8,
            vocab_size=len(vocab), bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"], max_position_embeddings=77,
        )  # fmt: skip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoders = [CLIPTextModel(config(32)).eval(), CLIPTextModelWithProjection(config(16)).eval()]
    return [one, two], encoders


def test_sdxl_concatenates_both_encoders_and_pools_the_first_chunk(tiny_sd: TinySD) -> None:
    tokenizers, encoders = sdxl_parts(tiny_sd.diffusers_dir / "tokenizer")
    encoder = cond.PromptEncoder(tokenizers, encoders, sdxl=True)
    prompt = "a cat, " + "y" * 80
    encoding = encoder.encode(prompt)
    assert encoding.embeds.shape == (1, 154, 48) and encoding.pooled.shape == (1, 8)

    chunks = [tokenize_chunks(t, prompt) for t in tokenizers]
    assert chunks[1][1].tokens[-1] == token_of(tokenizers[1], "!")  # the second tokenizer pads with "!"
    assert chunks[0][1].tokens[-1] == tokenizers[0].eos_token_id
    with torch.no_grad():
        first = encoders[0](torch.tensor([chunks[0][0].tokens]), output_hidden_states=True)
        second = encoders[1](torch.tensor([chunks[1][0].tokens]), output_hidden_states=True)
    assert torch.allclose(encoding.embeds[:, :77, :32], first.hidden_states[-2], atol=1e-6)
    assert torch.allclose(encoding.embeds[:, :77, 32:], second.hidden_states[-2], atol=1e-6)
    assert torch.allclose(encoding.pooled, second.text_embeds, atol=1e-6)
    assert torch.allclose(encoder.encode(prompt, clip_skip=2).embeds[:, :77, :32], first.hidden_states[-3], atol=1e-6)

    schedule = cond.ConditioningSchedule(encoder, prompt, "", steps=2)
    step = schedule.at(0)
    assert step.negative.shape == (1, 154, 48) and step.negative_pooled.shape == (1, 8)
    assert set(step.pipeline_kwargs()) == {
        "prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds"
    }  # fmt: skip
    assert schedule.callback_tensor_inputs == ["prompt_embeds", "add_text_embeds"]


def token_of(tokenizer: Any, text: str) -> int:
    return int(tokenizer.convert_tokens_to_ids(text))
