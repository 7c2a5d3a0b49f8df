"""AND (composable diffusion): A1111's splitting and its guidance formula, on the tiny SD 1.x UNet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from runtime.prompts.composable import is_composable, split_and
from tests.support.tiny_sd import TinySD

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

torch = pytest.importorskip("torch")
cond = pytest.importorskip("runtime.prompts.conditioning")
guidance = pytest.importorskip("runtime.prompts.guidance")


@pytest.mark.parametrize(
    ("prompt", "parts"),
    [
        ("a cat", [("a cat", 1.0)]),
        ("a cat AND a dog :0.5", [("a cat", 1.0), (" a dog", 0.5)]),
        ("a cat:1.2", [("a cat", 1.2)]),  # a trailing weight alone weighs the whole prompt, as in A1111
        ("(a:1.2) ANDROID", [("(a:1.2) ANDROID", 1.0)]),  # AND only as a word
        ("a AND b:-1 AND c : .5", [("a", 1.0), (" b", -1.0), (" c", 0.5)]),
        ("and, And", [("and, And", 1.0)]),  # uppercase only
    ],
)
def test_split_as_a1111(prompt: str, parts: list[tuple[str, float]]) -> None:
    assert split_and(prompt) == parts
    assert is_composable(parts) == (parts != [(prompt, 1.0)])


@pytest.fixture(scope="module")
def pipe(tiny_sd: TinySD) -> StableDiffusionPipeline:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd.diffusers_dir, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_the_unet_output_is_a1111s_combination(pipe: StableDiffusionPipeline) -> None:
    encoder = cond.PromptEncoder.from_pipeline(pipe)
    schedule = cond.ConditioningSchedule(encoder, "a cat :0.7 AND a dog :0.4 AND a [red:blue:1] fox", "bad", steps=4)
    assert schedule.composable and schedule.first_weights == [0.7]
    sample = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor(500)

    def run(text: str, latent: Any) -> Any:
        embeds = encoder.encode(text).embeds
        return pipe.unet(latent, t, encoder_hidden_states=embeds, return_dict=False)[0]

    with torch.no_grad():
        uncond, cat, dog = run("bad", sample[:1]), run("a cat ", sample[1:]), run(" a dog ", sample[1:])
        red, blue = run(" a red fox", sample[1:]), run(" a blue fox", sample[1:])
        step = schedule.at(0)
        for current, fox in ((0, red), (1, red), (2, blue)):  # A1111: steps with index 0 and 1 read "red"
            schedule.current_step = current
            with guidance.composable_guidance(pipe, schedule):
                both = torch.cat([step.negative, step.positive])
                out = pipe.unet(sample, t, encoder_hidden_states=both, return_dict=False)[0]
            # CFGDenoiser.combine_denoised, written out: the pipeline's cond half becomes this
            expected = uncond + 0.7 * (cat - uncond) + 0.4 * (dog - uncond) + 1.0 * (fox - uncond)
            assert torch.allclose(out[:1], uncond, atol=1e-5)
            assert torch.allclose(out[1:], expected, atol=1e-5), current
    plain = pipe.unet(sample, t, encoder_hidden_states=torch.cat([step.negative, step.positive]), return_dict=False)[0]
    assert torch.allclose(plain[1:], cat, atol=1e-5)  # the hook is gone after the block


def test_a_plain_prompt_installs_nothing(pipe: StableDiffusionPipeline) -> None:
    encoder = cond.PromptEncoder.from_pipeline(pipe)
    schedule = cond.ConditioningSchedule(encoder, "a cat", "bad", steps=4)
    with guidance.composable_guidance(pipe, schedule):
        assert not pipe.unet._forward_hooks
