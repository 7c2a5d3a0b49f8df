"""Building the scheduler a pipeline samples with, from a resolved :class:`~runtime.sampling.table.SamplerSpec`.

UniPC is diffusers' own ``UniPCMultistepScheduler``; every other sampler is a
:class:`~runtime.sampling.scheduler.KSamplerScheduler` running A1111's algorithm.
diffusers and torch are imported only here, when a scheduler is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from bootstrap.errors import ExitCode, YijianError
from runtime.sampling.table import SamplerSpec

if TYPE_CHECKING:
    from diffusers import SchedulerMixin

_BETAS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type")
_UNIPC = "UniPCMultistepScheduler"


class SamplerOptionUnsupported(YijianError):
    code = "SAMPLER_OPTION_UNSUPPORTED"
    exit_code = ExitCode.USAGE
    zh = "采样器「{sampler}」不支持「{option}」。支持它的采样器：{valid}"
    en = "The sampler {sampler!r} does not support {option!r}. Samplers that do: {valid}"
    hint_zh = "换一个采样器。"
    hint_en = "Pick another sampler."


def make_scheduler(
    spec: SamplerSpec,
    base_config: Mapping[str, Any],
    *,
    prediction_type: str | None = None,
    rescale_betas_zero_snr: bool = False,
    timestep_spacing: str | None = None,
    sdxl: bool = False,
    eta: float | None = None,
) -> SchedulerMixin:
    """``spec``'s scheduler on a checkpoint's scheduler config (``pipe.scheduler.config``): its betas stay.

    SD 2.x 768 models need ``prediction_type="v_prediction"``.  Zero-terminal-SNR
    models (``rescale_betas_zero_snr``, ``timestep_spacing``) have an infinite top
    noise level that A1111's samplers cannot start from: only UniPC takes them.
    ``sdxl`` picks the SDXL table of Align Your Steps; ``eta`` overrides A1111's
    default (1 for ancestral and SDE samplers, 0 for DDIM).
    """
    if spec.algorithm == "unipc":
        return _unipc(spec, base_config, prediction_type, rescale_betas_zero_snr, timestep_spacing)
    for key, value in (
        ("rescale_betas_zero_snr", rescale_betas_zero_snr or None),
        ("timestep_spacing", timestep_spacing),
    ):
        if value is not None:
            raise SamplerOptionUnsupported(sampler=spec.name, option=f"{key}={value}", valid="UniPC")
    from runtime.sampling.scheduler import KSamplerScheduler

    config = {k: base_config[k] for k in _BETAS if base_config.get(k) is not None}
    if prediction_type is not None:
        config["prediction_type"] = prediction_type
    discard = bool(spec.options.get("discard_next_to_last_sigma", False))
    scheduler = KSamplerScheduler(**config, algorithm=spec.algorithm, schedule=spec.sigmas, eta=eta, sdxl=sdxl,
                                  discard_penultimate=discard)  # fmt: skip
    return cast("SchedulerMixin", scheduler)


def _unipc(spec: SamplerSpec, base_config: Mapping[str, Any], prediction_type: str | None,
           rescale_betas_zero_snr: bool, timestep_spacing: str | None) -> SchedulerMixin:  # fmt: skip
    """diffusers' UniPC (bh2, order 2: A1111's bh1, order 3 turned the test model's images into NaN)."""
    import diffusers

    cls: Any = getattr(diffusers, _UNIPC)
    accepted = set(inspect.signature(cls).parameters)
    config = {k: v for k, v in base_config.items() if k in accepted}
    config["steps_offset"] = 1
    overrides = {"prediction_type": prediction_type, "timestep_spacing": timestep_spacing,
                 "rescale_betas_zero_snr": True if rescale_betas_zero_snr else None}  # fmt: skip
    config.update({k: v for k, v in overrides.items() if v is not None})
    return cast("SchedulerMixin", cls.from_config(config))


def attach(pipe: Any) -> None:
    """Let the pipeline's scheduler see each UNet output (DDIM CFG++ needs the unconditional half); once per UNet."""
    unet = pipe.unet
    if getattr(unet, "_yijian_scheduler_hook", None) is not None:
        return

    def hook(module: Any, args: Any, output: Any) -> None:
        take = getattr(pipe.scheduler, "take_uncond", None)
        if take is not None:
            take(output)

    unet._yijian_scheduler_hook = unet.register_forward_hook(hook)
