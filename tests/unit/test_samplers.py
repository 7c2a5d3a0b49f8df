"""A1111 sampler names -> diffusers schedulers: the table, name resolution, and real runs on the tiny model."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import pytest

from bootstrap.errors import ExitCode
from runtime import samplers
from runtime.demo import SCHEDULER_CONFIG as DEMO_SCHEDULER_CONFIG
from runtime.samplers import SamplerOptionUnsupported, UnknownSampler, make_scheduler, resolve
from tests.support.tiny_sd import TinySD

if TYPE_CHECKING:
    import numpy as np

# SD 1.5's scheduler_config.json (PNDM), as checkpoints carry it.
SCHEDULER_CONFIG: dict[str, Any] = {"_class_name": "PNDMScheduler", **DEMO_SCHEDULER_CONFIG}
REQUIRED = ["Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM", "UniPC", "LMS", "Heun"]
EXTRA = ["DPM++ 2M SDE", "DPM++ 2M SDE Karras", "DPM2", "DPM2 a", "DPM++ 2S a", "LMS Karras", "PLMS", "DPM++ 3M SDE"]


def test_the_issue_s_samplers_are_listed() -> None:
    names = samplers.sampler_names()
    assert set(REQUIRED + EXTRA) <= set(names)
    assert len(names) == len(set(names))
    assert "DPM++ 2M Karras" not in samplers.sampler_names(legacy=False)


def test_api_samplers_has_a1111s_shape() -> None:
    items = samplers.api_samplers()
    assert [item["name"] for item in items] == samplers.sampler_names()
    euler_a = next(item for item in items if item["name"] == "Euler a")
    assert euler_a == {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"], "options": {}}
    assert {"name": "DPM++ 2M Karras", "aliases": ["k_dpmpp_2m_ka"], "options": {"scheduler": "karras"}} in items


@pytest.mark.parametrize(
    ("name", "schedule", "want", "schedule_type"),
    [
        ("Euler a", None, "Euler a", "Automatic"),
        ("  euler   A ", None, "Euler a", "Automatic"),
        ("K_EULER_ANCESTRAL", None, "Euler a", "Automatic"),
        ("DPM++ 2M Karras", None, "DPM++ 2M", "Karras"),
        ("k_dpmpp_2m_ka", None, "DPM++ 2M", "Karras"),
        ("DPM++ 2M", "Automatic", "DPM++ 2M", "Karras"),  # A1111 >= 1.9: Automatic is the sampler's default
        ("DPM++ 2M", "Uniform", "DPM++ 2M", "Uniform"),
        ("DPM++ 2M SDE", None, "DPM++ 2M SDE", "Exponential"),
        ("DPM++ 2M SDE Heun Karras", None, "DPM++ 2M SDE Heun", "Karras"),  # split the way A1111 splits
        ("Euler Karras", "Uniform", "Euler", "Karras"),  # a schedule inside the name wins
        ("Euler", "sgm_uniform", "Euler", "SGM Uniform"),
        ("Euler", "SGMUniform", "Euler", "SGM Uniform"),
        ("lms karras", "", "LMS", "Karras"),
        ("pndm", None, "PLMS", "Automatic"),
    ],
)
def test_resolve_names_aliases_and_schedules(name: str, schedule: str | None, want: str, schedule_type: str) -> None:
    spec = resolve(name, schedule)
    assert (spec.name, spec.schedule) == (want, schedule_type)
    assert spec.infotext() == {"Sampler": want, "Schedule type": schedule_type}


def test_settings_for_the_issue_s_samplers() -> None:
    karras = resolve("DPM++ 2M Karras")
    assert karras.scheduler_class == "DPMSolverMultistepScheduler"
    assert dict(karras.config) == {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}
    sde = resolve("DPM++ SDE Karras")
    assert sde.scheduler_class == "DPMSolverSinglestepScheduler" and sde.note
    assert sde.config["algorithm_type"] == "sde-dpmsolver++" and sde.config["use_karras_sigmas"] is True
    assert resolve("Euler a").scheduler_class == "EulerAncestralDiscreteScheduler"
    assert resolve("Euler", "SGM Uniform").config == {"timestep_spacing": "trailing"}


def test_an_unknown_name_says_what_would_work() -> None:
    with pytest.raises(UnknownSampler) as caught:
        resolve("Eular a")
    err = caught.value
    assert err.code == "SAMPLER_UNKNOWN" and err.exit_code is ExitCode.USAGE
    for lang in ("en", "zh"):
        assert "Eular a" in err.message(lang) and "DPM++ 2M" in err.message(lang) and "UniPC" in err.message(lang)
    assert "Euler a" in err.hint("en") and "Euler a" in err.hint("zh")
    assert "采样器" in err.message("zh")


@pytest.mark.parametrize(("name", "schedule"), [("Euler a", "Karras"), ("DDIM", "Exponential"), ("Euler", "Bogus")])
def test_a_schedule_the_sampler_cannot_take_is_refused(name: str, schedule: str) -> None:
    with pytest.raises(SamplerOptionUnsupported) as caught:
        resolve(name, schedule)
    assert caught.value.exit_code is ExitCode.USAGE and "Automatic" in caught.value.message("en")


def test_schedule_types() -> None:
    assert samplers.schedule_types()[:3] == ["Automatic", "Uniform", "Karras"]
    assert samplers.schedule_types("Euler a") == ["Automatic", "Uniform", "SGM Uniform"]
    assert samplers.schedule_types("DDIM") == ["Automatic"]
    assert [s["label"] for s in samplers.api_schedulers()] == samplers.schedule_types()


def test_the_table_only_uses_settings_diffusers_takes() -> None:
    """Every sampler with every schedule it claims maps to keyword arguments its diffusers class accepts."""
    for sampler in samplers.SAMPLERS:
        accepted = set(inspect.signature(samplers.scheduler_class(sampler.scheduler_class)).parameters)
        assert set(sampler.legacy) <= set(sampler.schedules)
        assert sampler.default == "Automatic" or sampler.default in sampler.schedules
        for schedule in samplers.schedule_types(sampler.name):
            spec = resolve(sampler.name, schedule)
            assert set(spec.config) <= accepted, (sampler.name, schedule)


def test_lms_coefficients_match_numerical_integration() -> None:
    sigmas = [14.6, 9.7, 6.1, 3.4, 1.7, 0.6, 0.0]
    for t in range(3, 6):
        for current in range(4):
            exact = samplers.lms_coefficient(sigmas, 4, t, current)
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


def test_make_scheduler_keeps_the_model_s_betas() -> None:
    config = {**SCHEDULER_CONFIG, "beta_end": 0.02, "steps_offset": 0, "_class_name": "PNDMScheduler"}
    scheduler: Any = make_scheduler(resolve("DPM++ 2M Karras"), config)
    assert type(scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert scheduler.config.beta_end == 0.02 and scheduler.config.beta_schedule == "scaled_linear"
    assert scheduler.config.use_karras_sigmas is True and scheduler.config.steps_offset == 1


def test_v_prediction_and_zero_snr_overrides_land_in_the_config() -> None:
    scheduler: Any = make_scheduler(
        resolve("Euler"),
        SCHEDULER_CONFIG,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
    )
    assert scheduler.config.prediction_type == "v_prediction"
    assert scheduler.config.rescale_betas_zero_snr is True and scheduler.config.timestep_spacing == "trailing"
    for spec in (resolve("DDIM"), resolve("DPM++ SDE"), resolve("UniPC")):
        built: Any = make_scheduler(spec, SCHEDULER_CONFIG, prediction_type="v_prediction")
        assert built.config.prediction_type == "v_prediction"


def test_an_override_the_scheduler_lacks_is_refused() -> None:
    with pytest.raises(SamplerOptionUnsupported) as caught:
        make_scheduler(resolve("LMS"), SCHEDULER_CONFIG, rescale_betas_zero_snr=True)
    assert "rescale_betas_zero_snr" in caught.value.message("en") and "Euler" in caught.value.message("en")


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


def generate(tiny: Tiny, name: str, schedule: str | None = None, seed: int = 7) -> np.ndarray[Any, Any]:
    import torch

    pipe, base = tiny
    pipe.scheduler = make_scheduler(resolve(name, schedule), base)
    result = pipe(
        "a red cube",
        negative_prompt="blurry",
        num_inference_steps=4,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    )
    return result.images  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", samplers.sampler_names(legacy=False) + ["DPM++ 2M Karras", "LMS Karras"])
def test_every_sampler_generates_a_finite_image(tiny: Tiny, name: str) -> None:
    import numpy as np

    assert tiny[1]["_class_name"] == "PNDMScheduler" and tiny[1]["beta_end"] == 0.012
    images = generate(tiny, name)
    assert images.shape == (1, 64, 64, 3)
    assert np.isfinite(images).all() and images.std() > 0


@pytest.mark.parametrize("name", ["Euler a", "DPM++ SDE Karras", "DPM++ 2M Karras"])
def test_a_fixed_seed_gives_the_same_image(tiny: Tiny, name: str) -> None:
    import numpy as np

    first, again, other = generate(tiny, name), generate(tiny, name), generate(tiny, name, seed=8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
