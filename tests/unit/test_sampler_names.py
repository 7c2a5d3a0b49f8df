"""A1111 1.10's sampler and schedule-type names: the lists, the defaults, old names, and the fallback."""

from __future__ import annotations

import pytest

from runtime import samplers
from runtime.samplers import resolve

# A1111 1.10's GET /sdapi/v1/samplers, in its order (sd_samplers_kdiffusion, sd_samplers_timesteps, sd_samplers_lcm).
A1111_SAMPLERS = [
    "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE", "Euler a", "Euler",
    "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart", "DDIM", "DDIM CFG++", "PLMS", "UniPC",
    "LCM",
]  # fmt: skip
A1111_SCHEDULES = [
    ("automatic", "Automatic"), ("uniform", "Uniform"), ("karras", "Karras"), ("exponential", "Exponential"),
    ("polyexponential", "Polyexponential"), ("sgm_uniform", "SGM Uniform"), ("kl_optimal", "KL Optimal"),
    ("align_your_steps", "Align Your Steps"), ("simple", "Simple"), ("normal", "Normal"), ("ddim", "DDIM"),
    ("beta", "Beta"),
]  # fmt: skip


def test_twenty_samplers_and_twelve_schedule_types_as_a1111_lists_them() -> None:
    assert [s["name"] for s in samplers.api_samplers()] == A1111_SAMPLERS
    assert [(s["name"], s["label"]) for s in samplers.api_schedulers()] == A1111_SCHEDULES
    assert samplers.sampler_names(legacy=False) == A1111_SAMPLERS
    assert samplers.schedule_types() == [label for _, label in A1111_SCHEDULES]
    assert samplers.DEFAULT_SAMPLER == "DPM++ 2M"


def test_every_one_of_the_240_pairs_resolves() -> None:
    pairs = {(resolve(s, t).name, t) for s in A1111_SAMPLERS for _, t in A1111_SCHEDULES}
    assert len(pairs) == 240
    assert all(resolve(s, t).warning is None for s in A1111_SAMPLERS for _, t in A1111_SCHEDULES)


def test_api_entries_carry_a1111_s_options() -> None:
    items = {item["name"]: item for item in samplers.api_samplers()}
    assert items["Euler a"] == {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"],
                                "options": {"uses_ensd": True}}  # fmt: skip
    assert items["DPM++ 2M"]["options"] == {"scheduler": "karras"}
    assert items["DPM++ SDE"]["options"] == {"scheduler": "karras", "second_order": True, "brownian_noise": True}
    assert items["DPM++ 2M SDE Heun"]["options"]["solver_type"] == "heun"
    assert items["DPM++ 3M SDE"]["options"]["discard_next_to_last_sigma"] is True
    assert items["Restart"]["options"] == {"scheduler": "karras", "second_order": True}
    assert items["LCM"] == {"name": "LCM", "aliases": ["k_lcm"], "options": {}}
    sgm = next(s for s in samplers.api_schedulers() if s["name"] == "sgm_uniform")
    assert sgm["aliases"] == ["SGMUniform"] and sgm["need_inner_model"] is True
    assert next(s for s in samplers.api_schedulers() if s["name"] == "karras")["default_rho"] == 7.0


@pytest.mark.parametrize(
    ("name", "schedule", "want", "schedule_type", "sigmas"),
    [
        ("Euler a", None, "Euler a", "Automatic", None),
        ("Euler a", "Karras", "Euler a", "Karras", "karras"),  # refused before: clients send it
        ("  euler   A ", None, "Euler a", "Automatic", None),
        ("K_EULER_ANCESTRAL", None, "Euler a", "Automatic", None),
        ("DPM++ 2M", None, "DPM++ 2M", "Karras", "karras"),  # Automatic is the sampler's default, written as such
        ("DPM++ 2M", "Automatic", "DPM++ 2M", "Karras", "karras"),
        ("DPM++ 2M", "Uniform", "DPM++ 2M", "Uniform", "uniform"),
        ("DPM++ 2M SDE", None, "DPM++ 2M SDE", "Exponential", "exponential"),
        ("DPM++ 3M SDE", "", "DPM++ 3M SDE", "Exponential", "exponential"),
        ("DPM2 a", None, "DPM2 a", "Karras", "karras"),
        ("Restart", None, "Restart", "Karras", "karras"),
        ("Heun", None, "Heun", "Automatic", None),
        ("LCM", "align_your_steps", "LCM", "Align Your Steps", "align_your_steps"),
        ("Euler", "sgm_uniform", "Euler", "SGM Uniform", "sgm_uniform"),
        ("Euler", "SGMUniform", "Euler", "SGM Uniform", "sgm_uniform"),
        ("Euler", "kl optimal", "Euler", "KL Optimal", "kl_optimal"),
        ("DDIM", "Karras", "DDIM", "Karras", None),  # A1111 writes it and its DDIM ignores it
        ("DDIM CFG++", None, "DDIM CFG++", "Automatic", None),
        ("UniPC", "Beta", "UniPC", "Beta", None),
        ("pndm", None, "PLMS", "Automatic", None),
    ],
)
def test_resolve(name: str, schedule: str | None, want: str, schedule_type: str, sigmas: str | None) -> None:
    spec = resolve(name, schedule)
    assert (spec.name, spec.schedule, spec.sigmas, spec.warning) == (want, schedule_type, sigmas, None)
    assert spec.infotext() == {"Sampler": want, "Schedule type": schedule_type}


@pytest.mark.parametrize(
    ("name", "schedule", "want", "schedule_type"),
    [
        ("DPM++ 2M Karras", None, "DPM++ 2M", "Karras"),
        ("DPM++ SDE Karras", None, "DPM++ SDE", "Karras"),
        ("DPM++ 2M SDE Exponential", None, "DPM++ 2M SDE", "Exponential"),
        ("DPM++ 2M SDE Karras", None, "DPM++ 2M SDE", "Karras"),
        ("DPM++ 2M SDE Heun Karras", None, "DPM++ 2M SDE Heun", "Karras"),
        ("DPM++ 2M SDE Heun Exponential", None, "DPM++ 2M SDE Heun", "Exponential"),
        ("DPM++ 3M SDE Karras", None, "DPM++ 3M SDE", "Karras"),
        ("DPM++ 3M SDE Exponential", None, "DPM++ 3M SDE", "Exponential"),
        ("LMS Karras", None, "LMS", "Karras"),
        ("DPM2 Karras", None, "DPM2", "Karras"),
        ("DPM2 a Karras", None, "DPM2 a", "Karras"),
        ("DPM++ 2S a Karras", "Uniform", "DPM++ 2S a", "Karras"),  # the schedule in the name wins, as in A1111
        ("k_dpmpp_2m_ka", None, "DPM++ 2M", "Karras"),
        ("k_lms_ka", None, "LMS", "Karras"),
        ("Euler SGM Uniform", None, "Euler", "SGM Uniform"),  # A1111 splits any label off the end
        ("Euler a Align Your Steps", None, "Euler a", "Align Your Steps"),
    ],
)
def test_a1111_s_pre_1_9_names(name: str, schedule: str | None, want: str, schedule_type: str) -> None:
    spec = resolve(name, schedule)
    assert (spec.name, spec.schedule, spec.warning) == (want, schedule_type, None)


def test_an_unknown_sampler_falls_back_to_the_default_with_a_warning() -> None:
    spec = resolve("Eular a")
    assert (spec.name, spec.schedule, spec.sigmas) == ("DPM++ 2M", "Karras", "karras")
    assert spec.warning is not None
    zh, en = spec.warning
    assert "Eular a" in en and "DPM++ 2M" in en and "Eular a" in zh and "DPM++ 2M" in zh and "采样器" in zh


def test_an_unknown_schedule_type_is_automatic_with_a_warning() -> None:
    spec = resolve("Euler", "Bogus")
    assert (spec.name, spec.schedule, spec.sigmas) == ("Euler", "Automatic", None)
    assert spec.warning is not None and "Bogus" in spec.warning[1] and "Automatic" in spec.warning[1]
    both = resolve("nope", "nada")
    assert both.warning is not None and "nope" in both.warning[1] and "nada" in both.warning[1]


def test_no_name_is_the_default_sampler_without_a_warning() -> None:
    assert (resolve("").name, resolve("").warning) == ("DPM++ 2M", None)


@pytest.mark.parametrize(
    ("infotext", "want"),
    [
        ("Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7", ("Euler a", "Karras")),
        ("Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7", ("Euler a", "Automatic")),
        ("Steps: 13, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 4", ("DPM++ 2M", "Automatic")),
        ("Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7", ("DPM++ 2M", "Automatic")),  # A1111 <= 1.8
        ("Steps: 20, Sampler: DPM++ 2M SDE Karras, CFG scale: 7", ("DPM++ 2M SDE", "Karras")),
        ("Steps: 20, Sampler: LMS Karras, CFG scale: 7", ("LMS", "Karras")),
        ("Steps: 30, Sampler: DDIM, Schedule type: Beta, CFG scale: 7", ("DDIM", "Beta")),
        ("Steps: 20, Sampler: Eular a, CFG scale: 7", ("DPM++ 2M", "Automatic")),
        ("Steps: 20, CFG scale: 7", ("DPM++ 2M", "Automatic")),
    ],
)
def test_infotexts_read_back_as_a1111_reads_them(infotext: str, want: tuple[str, str]) -> None:
    from runtime.pnginfo import parse_parameters

    assert samplers.from_infotext(parse_parameters("a cat\n" + infotext)) == want


def test_what_we_write_reads_back_to_the_same_sampling() -> None:
    """Every pair: the infotext fields we write, through A1111's text format and parser, give the same run."""
    from runtime.pnginfo import parse_parameters

    for name in A1111_SAMPLERS:
        for _, label in A1111_SCHEDULES:
            spec = resolve(name, label)
            text = "a cat\nSteps: 20, " + ", ".join(f"{k}: {v}" for k, v in spec.infotext().items()) + ", Seed: 1"
            again = resolve(*samplers.from_infotext(parse_parameters(text)))
            assert (again.name, again.sigmas, again.schedule) == (spec.name, spec.sigmas, spec.schedule)


def test_eta_is_written_only_where_a1111_writes_it() -> None:
    assert resolve("Euler a").infotext(0.5)["Eta"] == 0.5
    assert "Eta" not in resolve("Euler a").infotext(1.0)  # the default of the ancestral samplers
    assert "Eta" not in resolve("Euler").infotext(0.5)  # no eta in its algorithm
    assert resolve("DDIM").infotext(0.3)["Eta DDIM"] == 0.3 and "Eta DDIM" not in resolve("DDIM").infotext(0.0)
    assert resolve("DPM++ 2M SDE").infotext(0.7)["Eta"] == 0.7 and "Eta" not in resolve("PLMS").infotext(0.7)
