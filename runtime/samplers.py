"""A1111's sampler names, mapped onto diffusers schedulers.

Users, and the infotexts they copy from Civitai, speak A1111 ("DPM++ 2M
Karras", "Euler a").  This is the one table that turns those names into a
diffusers scheduler class and its settings, built on the checkpoint's own
scheduler config so the betas come from the model.

Names follow A1111 ≥ 1.9: a sampler plus a "Schedule type", where "Automatic"
is the sampler's default (Karras for DPM++ 2M, as in A1111).  The older
combined names ("DPM++ 2M Karras", ``k_dpmpp_2m_ka``) resolve to the same pair.
The mapping follows diffusers' own A1111 table (huggingface/diffusers#4167);
where it is an approximation the row's ``note`` says so.  Two choices:

* DPM++ SDE (and DPM++ 2S a): diffusers' port needs ``torchsde``, which the
  runtime does not install, so they use singlestep DPM-Solver++ in its SDE
  form (diffusers#8269): also second order and stochastic.
* LMS: diffusers integrates its coefficients with ``scipy``, also not
  installed; the integrand is a polynomial, so :func:`lms_coefficient`
  integrates it exactly instead.

diffusers is imported only when a scheduler is built; the tables need nothing.
"""

from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from bootstrap.errors import ExitCode, YijianError

if TYPE_CHECKING:
    from diffusers import SchedulerMixin

AUTOMATIC = "Automatic"
ALL = ("Uniform", "Karras", "Exponential", "SGM Uniform")


class UnknownSampler(YijianError):
    code = "SAMPLER_UNKNOWN"
    exit_code = ExitCode.USAGE
    zh = "没有名为「{name}」的采样器。可用的采样器：{valid}"
    en = "There is no sampler {name!r}. Valid samplers: {valid}"
    hint_zh = "{suggestion_zh}采样器名称与 A1111 相同，不区分大小写（也可用 k_euler_a 这类别名）。"
    hint_en = "{suggestion_en}Sampler names are A1111's, in any case (aliases like k_euler_a work too)."


class SamplerOptionUnsupported(YijianError):
    code = "SAMPLER_OPTION_UNSUPPORTED"
    exit_code = ExitCode.USAGE
    zh = "采样器「{sampler}」不支持「{option}」。可选：{valid}"
    en = "The sampler {sampler!r} does not support {option!r}. Choose from: {valid}"
    hint_zh = "换一个调度类型或采样器；「Automatic」总是可用。"
    hint_en = "Pick another schedule type or sampler; 'Automatic' always works."


@dataclass(frozen=True)
class Schedule:
    """An A1111 "Schedule type" and the scheduler settings that give it."""

    label: str
    ident: str  # A1111's internal name, also accepted
    config: Mapping[str, object]
    legacy_suffix: str = ""  # the alias suffix of A1111 ≤ 1.8's combined names (k_lms_ka)


# Uniform is k-diffusion's default spacing (linspace over the training timesteps); SGM Uniform is "trailing".
SCHEDULES: tuple[Schedule, ...] = (
    Schedule(AUTOMATIC, "automatic", {}),
    Schedule("Uniform", "uniform", {"timestep_spacing": "linspace"}),
    Schedule("Karras", "karras", {"use_karras_sigmas": True}, "ka"),
    Schedule("Exponential", "exponential", {"use_exponential_sigmas": True}, "exp"),
    Schedule("SGM Uniform", "sgm_uniform", {"timestep_spacing": "trailing"}),
)
_SCHEDULE_INDEX = {key: s for s in SCHEDULES for key in (s.label.casefold(), s.ident)}
_SCHEDULE_INDEX["sgmuniform"] = _SCHEDULE_INDEX["sgm_uniform"]  # A1111's alias for it


@dataclass(frozen=True)
class Sampler:
    """One row of the table: an A1111 sampler and the diffusers scheduler that plays it."""

    name: str
    aliases: tuple[str, ...]
    scheduler_class: str
    config: Mapping[str, object] = field(default_factory=dict)
    default: str = AUTOMATIC  # what "Automatic" means for it, as in A1111's sampler options
    schedules: tuple[str, ...] = ()  # schedule types it accepts besides Automatic
    legacy: tuple[str, ...] = ()  # schedule types A1111 ≤ 1.8 listed as combined names ("LMS Karras")
    note: str = ""


_MULTI, _SINGLE = "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler"
_SDE = {"algorithm_type": "sde-dpmsolver++"}
_SDE_2S = {**_SDE, "solver_order": 2, "lower_order_final": True}
_SDE_NOTE = "approximation: singlestep DPM-Solver++ (SDE); k-diffusion's version needs torchsde"
_K, _KE = ("Karras",), ("Karras", "Exponential")

# A1111 ≥ 1.9's order: modules/sd_samplers_kdiffusion.py, then the timestep samplers.
SAMPLERS: tuple[Sampler, ...] = (
    Sampler("DPM++ 2M", ("k_dpmpp_2m",), _MULTI, {"algorithm_type": "dpmsolver++", "solver_order": 2}, "Karras", ALL,
            _K),
    Sampler("DPM++ SDE", ("k_dpmpp_sde",), _SINGLE, _SDE_2S, "Karras", _KE, _K, _SDE_NOTE),
    Sampler("DPM++ 2M SDE", ("k_dpmpp_2m_sde",), _MULTI, {**_SDE, "solver_order": 2}, "Exponential", ALL, _KE),
    Sampler("DPM++ 2M SDE Heun", ("k_dpmpp_2m_sde_heun",), _MULTI, {**_SDE, "solver_order": 2, "solver_type": "heun"},
            "Exponential", ALL, _KE),
    Sampler("DPM++ 2S a", ("k_dpmpp_2s_a",), _SINGLE, _SDE_2S, "Karras", _KE, _K, _SDE_NOTE),
    Sampler("DPM++ 3M SDE", ("k_dpmpp_3m_sde",), _MULTI, {**_SDE, "solver_order": 3}, "Exponential", ALL, _KE),
    Sampler("Euler a", ("k_euler_a", "k_euler_ancestral"), "EulerAncestralDiscreteScheduler",
            schedules=("Uniform", "SGM Uniform")),
    Sampler("Euler", ("k_euler",), "EulerDiscreteScheduler", schedules=ALL),
    Sampler("LMS", ("k_lms",), "LMSDiscreteScheduler", schedules=ALL, legacy=_K),
    Sampler("Heun", ("k_heun",), "HeunDiscreteScheduler", schedules=ALL),
    Sampler("DPM2", ("k_dpm_2",), "KDPM2DiscreteScheduler", schedules=ALL, legacy=_K),
    Sampler("DPM2 a", ("k_dpm_2_a",), "KDPM2AncestralDiscreteScheduler", schedules=ALL, legacy=_K),
    # Timestep samplers: A1111 ignores the schedule type for these.  UniPC keeps diffusers' bh2, order 2:
    # A1111's bh1, order 3 turned our test model's images into NaN with diffusers 0.42.
    Sampler("DDIM", ("ddim",), "DDIMScheduler"),
    Sampler("PLMS", ("plms", "pndm"), "PNDMScheduler", {"skip_prk_steps": True}),
    Sampler("UniPC", ("unipc",), "UniPCMultistepScheduler"),
)  # fmt: skip


@dataclass(frozen=True)
class SamplerSpec:
    """A resolved choice: the sampler, its effective schedule type, and what to build."""

    name: str  # A1111 ≥ 1.9 sampler name ("DPM++ 2M")
    schedule: str  # effective schedule type ("Karras"; "Automatic" when the sampler has none)
    scheduler_class: str  # a diffusers class name
    config: Mapping[str, object]  # from_config overrides: the sampler's, then the schedule's
    note: str = ""

    def infotext(self) -> dict[str, str]:
        """The fields A1111 ≥ 1.9 writes for it: ``Sampler`` and ``Schedule type``."""
        return {"Sampler": self.name, "Schedule type": self.schedule}


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


# A1111 ≤ 1.8's combined names, each after its sampler: ("LMS Karras", ["k_lms_ka"], Karras).
_LEGACY = {
    s.name: [(f"{s.name} {label}", [f"{s.aliases[0]}_{_SCHEDULE_INDEX[label.casefold()].legacy_suffix}"],
              _SCHEDULE_INDEX[label.casefold()]) for label in s.legacy]
    for s in SAMPLERS
}  # fmt: skip
# Every spelling, folded: names and aliases (no schedule), then the combined ones (with theirs).
_INDEX: dict[str, tuple[Sampler, Schedule | None]] = {
    **{_fold(key): (s, None) for s in SAMPLERS for key in (s.name, *s.aliases)},
    **{_fold(key): (s, sch) for s in SAMPLERS for name, aliases, sch in _LEGACY[s.name] for key in (name, *aliases)},
}


def sampler_names(*, legacy: bool = True) -> list[str]:
    """Sampler names in A1111's order; with ``legacy``, each followed by its ≤ 1.8 combined names."""
    return [n for s in SAMPLERS for n in (s.name, *(name for name, _, _ in _LEGACY[s.name] if legacy))]


def schedule_types(sampler: str | None = None) -> list[str]:
    """The schedule types (all, or those ``sampler`` accepts), Automatic first."""
    accepted = _INDEX[_fold(resolve(sampler).name)][0].schedules if sampler else ALL
    return [AUTOMATIC, *(s.label for s in SCHEDULES if s.label in accepted)]


def api_samplers() -> list[dict[str, Any]]:
    """What A1111's ``GET /sdapi/v1/samplers`` answers: ``[{"name", "aliases", "options"}, …]``."""
    items: list[dict[str, Any]] = []
    for s in SAMPLERS:
        default = _SCHEDULE_INDEX[s.default.casefold()]
        options = {"scheduler": default.ident} if default.label != AUTOMATIC else {}
        items.append({"name": s.name, "aliases": list(s.aliases), "options": options})
        items += [{"name": n, "aliases": a, "options": {"scheduler": sch.ident}} for n, a, sch in _LEGACY[s.name]]
    return items


def api_schedulers() -> list[dict[str, Any]]:
    """What A1111's ``GET /sdapi/v1/schedulers`` answers (the fields clients read)."""
    return [{"name": s.ident, "label": s.label, "aliases": None} for s in SCHEDULES]


def resolve(name: str, schedule: str | None = None) -> SamplerSpec:
    """The spec for an A1111 sampler name or alias (any case), with an optional schedule type.

    A schedule type inside the name ("DPM++ 2M Karras", even "Euler Karras")
    wins over ``schedule``, as in A1111; ``None``, ``""`` and ``"Automatic"``
    mean the sampler's default.
    """
    folded = _fold(name)
    found = _INDEX.get(folded)
    for key, named in _SCHEDULE_INDEX.items() if found is None else ():
        rest = folded.removesuffix(" " + key)
        if rest != folded and rest in _INDEX:
            found = _INDEX[rest][0], named
            break
    if found is None:
        close = difflib.get_close_matches(name, sampler_names(), n=1, cutoff=0.6)
        raise UnknownSampler(
            name=name,
            valid=", ".join(sampler_names(legacy=False)),
            suggestion_zh=f"你是不是想用「{close[0]}」？" if close else "",
            suggestion_en=f"Did you mean {close[0]!r}? " if close else "",
        )
    sampler, chosen = found
    if chosen is None and schedule:
        chosen = _SCHEDULE_INDEX.get(_fold(schedule))
        if chosen is None:
            raise _unsupported(sampler, f"Schedule type: {schedule}")
    if chosen is None or chosen.label == AUTOMATIC:
        chosen = _SCHEDULE_INDEX[sampler.default.casefold()]
    elif chosen.label not in sampler.schedules:
        raise _unsupported(sampler, f"Schedule type: {chosen.label}")
    config = {**sampler.config, **chosen.config}
    return SamplerSpec(sampler.name, chosen.label, sampler.scheduler_class, config, sampler.note)


def _unsupported(sampler: Sampler, option: str) -> SamplerOptionUnsupported:
    valid = ", ".join([AUTOMATIC, *sampler.schedules])
    return SamplerOptionUnsupported(sampler=sampler.name, option=option, valid=valid)


def scheduler_class(name: str) -> type[SchedulerMixin]:
    """A diffusers scheduler class by name.

    diffusers exports LMS only when scipy is installed (a placeholder otherwise);
    its module imports without scipy, and :func:`lms_coefficient` replaces the scipy call.
    """
    import diffusers

    if name == "LMSDiscreteScheduler":
        from diffusers.schedulers import scheduling_lms_discrete

        return cast("type[SchedulerMixin]", scheduling_lms_discrete.LMSDiscreteScheduler)
    return cast("type[SchedulerMixin]", getattr(diffusers, name))


def _accepted(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


def make_scheduler(
    spec: SamplerSpec,
    base_config: Mapping[str, Any],
    *,
    prediction_type: str | None = None,
    rescale_betas_zero_snr: bool = False,
    timestep_spacing: str | None = None,
) -> SchedulerMixin:
    """``spec``'s scheduler on a checkpoint's scheduler config (``pipe.scheduler.config``), ``steps_offset=1``.

    Keys the class does not take (``skip_prk_steps`` for Euler …) are dropped.
    SD 2.x 768 models need ``prediction_type="v_prediction"``; zero-terminal-SNR
    ones ``rescale_betas_zero_snr=True`` and usually ``timestep_spacing="trailing"``.
    """
    cls: Any = scheduler_class(spec.scheduler_class)
    accepted = _accepted(cls)
    config = {k: v for k, v in base_config.items() if k in accepted}
    if "steps_offset" in accepted:
        config["steps_offset"] = 1
    config.update(spec.config)
    overrides: dict[str, object] = {"prediction_type": prediction_type, "timestep_spacing": timestep_spacing}
    overrides["rescale_betas_zero_snr"] = True if rescale_betas_zero_snr else None
    for key, value in ((k, v) for k, v in overrides.items() if v is not None):
        if key not in accepted:
            supported = [s.name for s in SAMPLERS if key in _accepted(scheduler_class(s.scheduler_class))]
            raise SamplerOptionUnsupported(sampler=spec.name, option=f"{key}={value}", valid=", ".join(supported))
        config[key] = value
    scheduler: SchedulerMixin = cls.from_config(config)
    if spec.scheduler_class == "LMSDiscreteScheduler":  # on the instance: the class stays diffusers' own
        setattr(scheduler, "get_lms_coefficient", types.MethodType(_lms_method, scheduler))  # noqa: B010
    return scheduler


def _lms_method(scheduler: Any, order: int, t: int, current_order: int) -> float:
    return lms_coefficient([float(s) for s in scheduler.sigmas], order, t, current_order)


def lms_coefficient(sigmas: list[float], order: int, t: int, current_order: int) -> float:
    """diffusers' LMS coefficient (it calls ``scipy.integrate.quad``), integrated exactly.

    The integral over [sigmas[t], sigmas[t + 1]] of the Lagrange basis polynomial
    through sigmas[t - k] (k < order) that is 1 at sigmas[t - current_order].
    """
    coefficients = [1.0]  # lowest degree first
    anchor = sigmas[t - current_order]
    for k in range(order):
        if k == current_order:
            continue
        root, scale = sigmas[t - k], 1.0 / (anchor - sigmas[t - k])
        shifted = [0.0, *coefficients]  # multiply by (tau - root) * scale
        for i, c in enumerate(coefficients):
            shifted[i] -= root * c
        coefficients = [c * scale for c in shifted]
    lo, hi = sigmas[t], sigmas[t + 1]
    return sum(c * (hi ** (i + 1) - lo ** (i + 1)) / (i + 1) for i, c in enumerate(coefficients))
