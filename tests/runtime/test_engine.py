"""The engine on the tiny random model, on the CPU: what A1111 users rely on."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.engine import Engine
from runtime.errors import InvalidRequest, ModelNotFound, OutOfMemory, PickleNotAllowed
from runtime.pnginfo import parse_parameters, read_parameters
from runtime.request import GenerationRequest
from tests.support.tiny_sd import TinySD, write_pickle_checkpoint

SMALL = {"steps": 4, "width": 64, "height": 64}


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def gen(engine: Engine, **kw: Any) -> Any:
    return engine.generate(GenerationRequest(**{**SMALL, "save_images": False, **kw}))


def test_same_seed_same_image_and_another_seed_differs(engine: Engine) -> None:
    a = gen(engine, prompt="a cat", seed=42)
    b = gen(engine, prompt="a cat", seed=42)
    c = gen(engine, prompt="a cat", seed=43)
    assert (pixels(a.images[0]) == pixels(b.images[0])).all()
    assert (pixels(a.images[0]) != pixels(c.images[0])).any()


def test_and_is_composable_diffusion(engine: Engine) -> None:
    cat = gen(engine, prompt="a cat", seed=8)
    assert (pixels(gen(engine, prompt="a cat AND a dog", seed=8).images[0]) != pixels(cat.images[0])).any()
    zero = gen(engine, prompt="a cat AND a dog :0", seed=8)
    assert int(abs(pixels(zero.images[0]) - pixels(cat.images[0])).max()) <= 1
    batch = gen(engine, prompt="a cat AND a dog", seed=8, batch_size=2)  # each image reproduces alone
    alone = gen(engine, prompt="a cat AND a dog", seed=9)
    # within one level: the combination's element-wise sums round differently on tensors of another size
    assert int(abs(pixels(batch.images[1]) - pixels(alone.images[0])).max()) <= 1
    flat = gen(engine, prompt="a cat AND a dog", seed=8, cfg_scale=1)
    assert any("AND" in en for _zh, en in flat.warnings)


def test_batches_use_seed_plus_i_and_each_image_reproduces_alone(engine: Engine) -> None:
    r = gen(engine, prompt="a cat", seed=100, n_iter=2, batch_size=2)
    assert r.seeds == [100, 101, 102, 103]
    assert len(r.images) == 4 and r.info["all_seeds"] == [100, 101, 102, 103]
    alone = gen(engine, prompt="a cat", seed=103)
    assert np.abs(pixels(alone.images[0]) - pixels(r.images[3])).max() <= 1  # batched matmuls may round differently


def test_random_seed_is_recorded(engine: Engine) -> None:
    r = gen(engine, prompt="x", seed=-1)
    assert 0 <= r.seeds[0] < 2**32
    assert f"Seed: {r.seeds[0]}," in r.infotexts[0]


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M Karras", "Heun", "DDIM"])
def test_samplers_run_and_are_recorded(engine: Engine, sampler: str) -> None:
    r = gen(engine, prompt="a cat", seed=1, sampler_name=sampler)
    assert np.isfinite(pixels(r.images[0])).all()
    fields = parse_parameters(r.infotexts[0])
    # A1111 >= 1.9 records the schedule apart from the sampler
    assert (fields["Sampler"], fields.get("Schedule type")) == {
        "Euler a": ("Euler a", None), "DPM++ 2M Karras": ("DPM++ 2M", "Karras"), "Heun": ("Heun", None),
        "DDIM": ("DDIM", None)}[sampler] or fields["Sampler"] == sampler  # fmt: skip


def test_an_unknown_sampler_runs_a1111_s_default_and_says_so(engine: Engine) -> None:
    r = gen(engine, prompt="a cat", seed=1, sampler_name="Eulr a", scheduler="Bogus")
    fields = parse_parameters(r.infotexts[0])
    assert (fields["Sampler"], fields["Schedule type"]) == ("DPM++ 2M", "Karras")  # the schedule that ran, as A1111
    assert any("Eulr a" in en and "Bogus" in en for _, en in r.warnings)


def test_a_non_default_eta_is_used_and_recorded_as_a1111_records_it(engine: Engine) -> None:
    default = gen(engine, prompt="a cat", seed=1, sampler_name="Euler a")
    changed = gen(engine, prompt="a cat", seed=1, sampler_name="Euler a", eta=0.0)
    assert "Eta" not in parse_parameters(default.infotexts[0])
    assert float(parse_parameters(changed.infotexts[0])["Eta"]) == 0.0
    assert (pixels(default.images[0]) != pixels(changed.images[0])).any()


def test_prompt_weights_and_editing_change_the_image(engine: Engine) -> None:
    plain = gen(engine, prompt="a cat", seed=5)
    weighted = gen(engine, prompt="a (cat:1.5)", seed=5)
    edited = gen(engine, prompt="a [cat:dog:0.5]", seed=5)
    assert (pixels(plain.images[0]) != pixels(weighted.images[0])).any()
    assert (pixels(plain.images[0]) != pixels(edited.images[0])).any()


def test_random_choice_follows_the_seed_and_is_recorded(engine: Engine) -> None:
    r = gen(engine, prompt="a {red|green|blue|pink|gold} cat", seed=7, n_iter=1, batch_size=4)
    assert all("{" not in p for p in r.prompts)
    again = gen(engine, prompt="a {red|green|blue|pink|gold} cat", seed=7, batch_size=4)
    assert again.prompts == r.prompts
    assert 'Template: "a {red|green|blue|pink|gold} cat"' in r.infotexts[0] or "Template: a {red" in r.infotexts[0]


def test_lora_changes_the_output_and_unloads_cleanly(engine: Engine) -> None:
    base = gen(engine, prompt="a cat", seed=9)
    with_lora = gen(engine, prompt="a cat <lora:tiny-lora:1>", seed=9)
    after = gen(engine, prompt="a cat", seed=9)
    assert (pixels(base.images[0]) != pixels(with_lora.images[0])).any()
    assert (pixels(base.images[0]) == pixels(after.images[0])).all()
    assert "Lora hashes:" in with_lora.infotexts[0] and "tiny-lora: " in with_lora.infotexts[0]
    assert "<lora:tiny-lora:1>" in with_lora.infotexts[0]  # the prompt is recorded as written


def test_missing_lora_is_a_warning_not_a_failure(engine: Engine) -> None:
    r = gen(engine, prompt="a cat <lora:nothing-here:0.7>", seed=9)
    assert r.images and any("nothing-here" in en for _zh, en in r.warnings)


def test_embedding_from_the_library_is_a_trigger_word(engine: Engine) -> None:
    assert engine.model is not None
    assert "tinyemb" in engine.model.pipe.tokenizer.get_vocab()
    a = gen(engine, prompt="a tinyemb", seed=3)
    b = gen(engine, prompt="a cat", seed=3)
    assert (pixels(a.images[0]) != pixels(b.images[0])).any()


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_hires_fix_doubles_the_size(engine: Engine, upscaler: str) -> None:
    r = gen(engine, prompt="a cat", seed=11, enable_hr=True, hr_scale=2, hr_upscaler=upscaler, hr_second_pass_steps=2)
    assert r.images[0].size == (128, 128)
    fields = parse_parameters(r.infotexts[0])
    assert fields["Hires upscaler"] == upscaler and fields["Hires upscale"] == "2"
    assert fields["Size-1"] == "64"  # A1111 records the first pass's size


class UnetCalls:
    """Counts the UNet's forward calls: with CFG batched, one per sampling step of a first-order sampler."""

    def __init__(self, engine: Engine) -> None:
        assert engine.model is not None
        self.unet, self.count = engine.model.pipe.unet, 0

    def __enter__(self) -> UnetCalls:
        self.handle = self.unet.register_forward_pre_hook(lambda *_: setattr(self, "count", self.count + 1))
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


def test_img2img_keeps_the_size_and_strength_sets_the_steps(engine: Engine) -> None:
    source = gen(engine, prompt="a cat", seed=2).images[0]
    with UnetCalls(engine) as low_calls:
        low = gen(engine, prompt="a dog", seed=2, steps=10, init_images=[source], denoising_strength=0.3,
                  sampler_name="Euler")  # fmt: skip
    with UnetCalls(engine) as high_calls:
        high = gen(engine, prompt="a dog", seed=2, steps=10, init_images=[source], denoising_strength=0.9,
                   sampler_name="Euler")  # fmt: skip
    assert low.images[0].size == high.images[0].size == (64, 64)
    # A1111 1.10 runs int(min(strength, 0.999) * steps) + 1 steps of a `steps` schedule: 0.3 -> 4, 0.9 -> 10
    assert (low_calls.count, high_calls.count) == (4, 10)
    assert (pixels(low.images[0]) != pixels(high.images[0])).any()
    assert "Denoising strength: 0.3" in low.infotexts[0]
    assert low.info["denoising_strength"] == 0.3


def test_a_tiny_img2img_strength_still_runs_one_step(engine: Engine) -> None:
    source = gen(engine, prompt="a cat", seed=3).images[0]
    with UnetCalls(engine) as calls:  # 5 x 0.01 < 1: diffusers alone would run no step and fail to decode
        r = gen(engine, prompt="a cat", seed=3, steps=5, init_images=[source], denoising_strength=0.01,
                sampler_name="Euler")  # fmt: skip
    assert calls.count == 1 and r.images[0].size == (64, 64)
    assert "Denoising strength: 0.01" in r.infotexts[0]


def test_a_tiny_hires_strength_runs_all_the_hires_steps(engine: Engine) -> None:
    with UnetCalls(engine) as calls:  # A1111 runs the hires steps from a schedule of steps / strength
        r = gen(engine, prompt="a cat", seed=4, steps=2, sampler_name="Euler", enable_hr=True, hr_scale=2,
                hr_second_pass_steps=5, hr_denoising_strength=0.01)  # fmt: skip
    assert calls.count == 2 + 5 and r.images[0].size == (128, 128)
    with UnetCalls(engine) as calls:
        gen(engine, prompt="a cat", seed=4, steps=2, sampler_name="Euler", enable_hr=True, hr_scale=2,
            hr_second_pass_steps=3, hr_denoising_strength=0.0)  # fmt: skip
    assert calls.count == 2 + 1


@pytest.mark.parametrize(
    ("steps", "strength", "img2img", "hires"),
    [  # worked out by hand from A1111 1.10's setup_img2img_steps and sample_img2img
        (20, 0.75, (20, 16), (26, 20)),
        (10, 0.3, (10, 4), (33, 10)),
        (5, 0.01, (5, 1), (500, 5)),
        (20, 1.0, (20, 20), (20, 20)),
    ],
)
def test_step_counts_follow_a1111(
    steps: int, strength: float, img2img: tuple[int, int], hires: tuple[int, int]
) -> None:
    from runtime import passes

    assert passes.img2img_steps(steps, strength) == img2img
    assert passes.hires_steps(steps, strength) == hires
    assert passes.hires_steps(150, 0.01, longest=1000) == (1000, 150)  # diffusers' schedules end at 1000
    for schedule, run in (img2img, hires):  # what diffusers then runs: int(schedule * strength)
        assert int(schedule * passes.diffusers_strength(schedule, run)) == run


def test_tiling_changes_the_image_and_restores_padding(engine: Engine) -> None:
    import torch

    plain = gen(engine, prompt="a cat", seed=4)
    tiled = gen(engine, prompt="a cat", seed=4, tiling=True)
    assert (pixels(plain.images[0]) != pixels(tiled.images[0])).any()
    assert engine.model is not None
    modes = {m.padding_mode for m in engine.model.pipe.unet.modules() if isinstance(m, torch.nn.Conv2d)}
    assert modes == {"zeros"}


def test_interrupt_stops_between_steps(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = engine.progress.step

    def step(done: int) -> None:
        seen.append(done)
        real(done)
        if done == 2:
            engine.interrupt()

    monkeypatch.setattr(engine.progress, "step", step)
    r = gen(engine, prompt="a cat", seed=1, steps=30, n_iter=3)
    assert r.interrupted
    assert max(seen) < 30 and len(r.images) == 1  # the rest of the batches never started


def test_progress_reports_while_generating(engine: Engine) -> None:
    fractions: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            s = engine.progress.snapshot()
            if s.active:
                fractions.append(s.fraction)

    t = threading.Thread(target=watch)
    t.start()
    gen(engine, prompt="a cat", seed=1, steps=20, n_iter=2)
    done.set()
    t.join()
    assert fractions and max(fractions) > 0.4
    assert not engine.progress.snapshot().active


def test_outputs_are_saved_with_a1111_names_and_pnginfo(engine: Engine) -> None:
    r = engine.generate(GenerationRequest(prompt="a cat", negative_prompt="blurry", seed=1234, **SMALL))
    path = r.paths[0]
    assert path.parent.parent.name == "txt2img-images" and path.name.endswith("-1234.png")
    assert path.parent.parent.parent == engine.bundle.outputs_dir
    text = read_parameters(path)
    assert text == r.infotexts[0]
    fields = parse_parameters(text or "")
    assert fields["Prompt"] == "a cat" and fields["Negative prompt"] == "blurry"
    assert fields["Seed"] == "1234" and fields["Steps"] == "4" and fields["Sampler"] == "Euler a"
    assert fields["Model"] == "tiny"


@pytest.mark.parametrize(("field", "value"), [("width", 65), ("height", 32), ("steps", 0), ("seed", -5)])
def test_bad_requests_name_the_field(engine: Engine, field: str, value: int) -> None:
    with pytest.raises(InvalidRequest) as err:
        gen(engine, prompt="x", **{field: value})
    assert err.value.params["field"] == field
    assert field in err.value.message("en")


def test_out_of_memory_gives_advice_and_the_engine_lives_on(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from runtime import passes

    def boom(*a: Any, **k: Any) -> Any:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with monkeypatch.context() as m:
        m.setattr(passes, "run_batch", boom)
        with pytest.raises(OutOfMemory) as err:
            gen(engine, prompt="x", seed=1)
    assert "medvram" in err.value.hint("en") or "smaller" in err.value.hint("en")
    assert gen(engine, prompt="x", seed=1).images


def test_unknown_model_is_named(engine: Engine) -> None:
    with pytest.raises(ModelNotFound) as err:
        engine.load("no-such-model.safetensors")
    assert "no-such-model" in err.value.message("en")


def test_single_file_loads_offline_with_the_architecture_config(tiny_sd: TinySD, engine: Engine) -> None:
    from runtime.checkpoints import describe_path, load_checkpoint

    loaded = load_checkpoint(describe_path(tiny_sd.checkpoint), engine.configs_root, architecture="sd15")
    from diffusers import UNet2DConditionModel

    ours = loaded.pipe.unet.state_dict()
    theirs = UNet2DConditionModel.from_pretrained(tiny_sd.diffusers_dir, subfolder="unet").state_dict()
    assert ours.keys() == theirs.keys()
    assert all((ours[k] == theirs[k]).all() for k in ours)


def test_pickle_checkpoints_need_an_explicit_opt_in(tiny_sd: TinySD, engine: Engine, tmp_path: Path) -> None:
    from runtime.checkpoints import describe_path, load_checkpoint

    ckpt = write_pickle_checkpoint(tiny_sd, tmp_path / "old.ckpt")
    with pytest.raises(PickleNotAllowed) as err:
        load_checkpoint(describe_path(ckpt), engine.configs_root, architecture="sd15")
    assert "old.ckpt" in err.value.message("en") and "--allow-ckpt" in err.value.hint("en")
    loaded = load_checkpoint(describe_path(ckpt), engine.configs_root, architecture="sd15", allow_pickle=True)
    assert loaded.pipe.unet is not None


def test_v_prediction_models_get_a_v_prediction_scheduler(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.model is not None
    monkeypatch.setattr(engine.model, "v_prediction", True)
    gen(engine, prompt="x", seed=1)
    assert engine.model.pipe.scheduler.config.prediction_type == "v_prediction"
    monkeypatch.setattr(engine.model, "v_prediction", False)
    gen(engine, prompt="x", seed=1)
    assert engine.model.pipe.scheduler.config.prediction_type == "epsilon"


def test_the_demo_model_is_labelled(tmp_path: Path) -> None:
    from bootstrap.layout import Bundle

    e = Engine(Bundle(tmp_path))
    e.load_demo()
    r = e.generate(GenerationRequest(prompt="x", seed=1, save_images=False, **SMALL))
    assert "demo" in parse_parameters(r.infotexts[0])["Model"]
    assert "random weights" in r.infotexts[0]


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch evil-ran",))


def test_an_allowed_ckpt_still_cannot_run_code(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from runtime.checkpoints import describe_path, load_checkpoint
    from runtime.errors import ModelLoadFailed

    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": _Evil()}}, ckpt)
    with pytest.raises(ModelLoadFailed):
        load_checkpoint(describe_path(ckpt), engine.configs_root, architecture="sd15", allow_pickle=True)
    assert not (tmp_path / "evil-ran").exists()  # weights_only refused the pickled call
