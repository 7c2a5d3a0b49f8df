"""A1111's samplers in real diffusers pipelines on the tiny model: every pair runs, seeds repeat, settings land."""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap.errors import ExitCode
from runtime import samplers
from runtime.demo import SCHEDULER_CONFIG as DEMO_SCHEDULER_CONFIG
from runtime.samplers import SamplerOptionUnsupported, make_scheduler, resolve
from runtime.sampling.kdiffusion import lms_coefficient
from tests.support.tiny_sd import TinySD

# SD 1.5's scheduler_config.json (PNDM), as checkpoints carry it.
SCHEDULER_CONFIG: dict[str, Any] = {"_class_name": "PNDMScheduler", **DEMO_SCHEDULER_CONFIG}
SAMPLER_NAMES = [s.name for s in samplers.SAMPLERS]
SCHEDULE_LABELS = [s.label for s in samplers.SCHEDULES]


def test_make_scheduler_keeps_the_model_s_betas() -> None:
    config = {**SCHEDULER_CONFIG, "beta_end": 0.02, "steps_offset": 0}
    scheduler: Any = make_scheduler(resolve("DPM++ 2M Karras"), config)
    assert type(scheduler).__name__ == "KSamplerScheduler" and scheduler.algorithm == "dpmpp_2m"
    assert scheduler.config.beta_end == 0.02 and scheduler.config.beta_schedule == "scaled_linear"
    assert scheduler.schedule == "karras" and scheduler.config.steps_offset == 1
    assert scheduler.model.sigmas[-1] > 14.6  # beta_end 0.02 reaches higher noise than SD's 0.012
    unipc: Any = make_scheduler(resolve("UniPC"), config)
    assert type(unipc).__name__ == "UniPCMultistepScheduler" and unipc.config.beta_end == 0.02


def test_the_samplers_options_reach_the_scheduler() -> None:
    three: Any = make_scheduler(resolve("DPM++ 3M SDE"), SCHEDULER_CONFIG)
    assert (three.schedule, three.discard_penultimate) == ("exponential", True)
    heun: Any = make_scheduler(resolve("DPM++ 2M SDE Heun"), SCHEDULER_CONFIG)
    assert heun.algorithm == "dpmpp_2m_sde_heun"
    ays: Any = make_scheduler(resolve("Euler", "Align Your Steps"), SCHEDULER_CONFIG, sdxl=True)
    ays.set_timesteps(11)
    assert ays._schedule[:3] == [14.615, 6.315, 3.771]  # the SDXL table
    assert make_scheduler(resolve("Euler a"), SCHEDULER_CONFIG).init_noise_sigma == 1.0  # until set_timesteps


def test_v_prediction_lands_in_the_config() -> None:
    for name in ("Euler", "DDIM", "DPM++ SDE", "UniPC", "LCM"):
        built: Any = make_scheduler(resolve(name), SCHEDULER_CONFIG, prediction_type="v_prediction")
        assert built.config.prediction_type == "v_prediction", name


def test_zero_terminal_snr_is_refused_where_the_samplers_cannot_start_from_it() -> None:
    with pytest.raises(SamplerOptionUnsupported) as caught:
        make_scheduler(resolve("LMS"), SCHEDULER_CONFIG, rescale_betas_zero_snr=True)
    err = caught.value
    assert err.exit_code is ExitCode.USAGE and "rescale_betas_zero_snr" in err.message("en")
    assert "UniPC" in err.message("en") and "LMS" in err.message("zh")
    with pytest.raises(SamplerOptionUnsupported):
        make_scheduler(resolve("Euler"), SCHEDULER_CONFIG, timestep_spacing="trailing")
    unipc: Any = make_scheduler(resolve("UniPC"), SCHEDULER_CONFIG, rescale_betas_zero_snr=True,
                                timestep_spacing="trailing")  # fmt: skip
    assert unipc.config.rescale_betas_zero_snr is True and unipc.config.timestep_spacing == "trailing"


def test_lms_coefficients_match_numerical_integration() -> None:
    sigmas = [14.6, 9.7, 6.1, 3.4, 1.7, 0.6, 0.0]
    for t in range(3, 6):
        for current in range(4):
            exact = lms_coefficient(sigmas, 4, t, current)
            assert exact == pytest.approx(_simpson(sigmas, 4, t, current), rel=1e-9, abs=1e-12)


def _simpson(sigmas: list[float], order: int, t: int, current: int, n: int = 2000) -> float:
    def f(tau: float) -> float:
        prod = 1.0
        for k in range(order):
            if k != current:
                prod *= (tau - sigmas[t - k]) / (sigmas[t - current] - sigmas[t - k])
        return prod

    a, b = sigmas[t], sigmas[t + 1]
    h = (b - a) / n
    total = f(a) + f(b) + sum((4 if i % 2 else 2) * f(a + i * h) for i in range(1, n))
    return total * h / 3


# ---- real generations on the tiny model ---------------------------------------------------------


Tiny = tuple[Any, dict[str, Any]]  # (StableDiffusionPipeline, its scheduler config)


@pytest.fixture(scope="module")
def tiny(tiny_sd: TinySD) -> Tiny:
    """The tiny pipeline, and the scheduler config it was saved with (SD 1.5's PNDM settings)."""
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(1)
    pipe: Any = StableDiffusionPipeline.from_pretrained(tiny_sd.diffusers_dir, local_files_only=True)  # type: ignore[no-untyped-call]
    pipe.set_progress_bar_config(disable=True)
    return pipe, dict(pipe.scheduler.config)


def generate(tiny: Tiny, name: str, schedule: str | None = None, seed: int = 7, steps: int = 4, size: int = 64,
             **kwargs: Any) -> Any:  # fmt: skip
    import torch

    pipe, base = tiny
    pipe.scheduler = make_scheduler(resolve(name, schedule), base)
    samplers.attach(pipe)
    result = pipe("a red cube", negative_prompt="blurry", num_inference_steps=steps, height=size, width=size,
                  generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs)  # fmt: skip
    return result.images


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULE_LABELS)
@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_every_pair_a1111_accepts_generates_an_image(tiny: Tiny, name: str, schedule: str) -> None:
    """All 240 sampler × schedule-type pairs of A1111 1.10, one short generation each."""
    import numpy as np

    images = generate(tiny, name, schedule, steps=3, size=32)
    assert images.shape == (1, 32, 32, 3)
    assert np.isfinite(images).all() and images.std() > 0


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_every_sampler_runs_img2img(tiny: Tiny, name: str) -> None:
    """diffusers' img2img pipeline slices the timesteps; every sampler runs the tail and gives an image."""
    import numpy as np
    import torch
    from diffusers import AutoPipelineForImage2Image

    pipe, base = tiny
    img2img: Any = AutoPipelineForImage2Image.from_pipe(pipe)
    img2img.set_progress_bar_config(disable=True)
    img2img.scheduler = make_scheduler(resolve(name), base)
    init = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    images = img2img("a red cube", image=init, strength=0.5, num_inference_steps=6, output_type="np",
                     generator=torch.Generator().manual_seed(1)).images  # fmt: skip
    assert images.shape == (1, 32, 32, 3) and np.isfinite(images).all()


@pytest.mark.parametrize("name", ["Euler a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M", "Restart"])
def test_a_fixed_seed_gives_the_same_image(tiny: Tiny, name: str) -> None:
    import numpy as np

    first, again, other = generate(tiny, name), generate(tiny, name), generate(tiny, name, seed=8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_ddim_cfg_pp_gets_the_unconditional_half_from_the_unet(tiny: Tiny) -> None:
    import numpy as np

    pipe, _ = tiny
    seen: list[int] = []
    cfgpp = generate(tiny, "DDIM CFG++", guidance_scale=7.0)
    original = type(pipe.scheduler).take_uncond

    def spy(self: Any, output: Any) -> None:
        seen.append(1)
        original(self, output)

    type(pipe.scheduler).take_uncond = spy  # type: ignore[method-assign]
    try:
        again = generate(tiny, "DDIM CFG++", guidance_scale=7.0)
    finally:
        type(pipe.scheduler).take_uncond = original  # type: ignore[method-assign]
    ddim = generate(tiny, "DDIM", guidance_scale=7.0)
    assert len(seen) == 3  # 4 steps: 3 evaluations, as A1111's DDIM
    assert np.array_equal(cfgpp, again) and not np.array_equal(cfgpp, ddim)
