"""The sampling passes of one batch: txt2img or img2img, the hires fix, decoding.

Called by :class:`runtime.engine.Engine` under its lock.  Each pass runs the
diffusers pipeline with ``output_type="latent"`` and a step callback that
reports progress, stops at an interrupt and swaps the conditioning when a
prompt-editing schedule says so; decoding is done here, so a VAE that
produces NaNs in half precision is retried in fp32 (A1111's automatic
``--no-half-vae``) instead of returning black images.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime import samplers, upscale
from runtime.errors import InvalidRequest
from runtime.inpaint import hook as inpaint_hook
from runtime.inpaint import latents as inpaint_latents
from runtime.noise import replaced_noise
from runtime.prompts import extract_networks, resolve_choices
from runtime.prompts.conditioning import ConditioningSchedule, PromptEncoder
from runtime.prompts.guidance import composable_guidance
from runtime.tiling import seamless

if TYPE_CHECKING:
    from PIL import Image

    from runtime.checkpoints import LibraryView, LoadedModel
    from runtime.device import Placement
    from runtime.lora import LoraSet
    from runtime.progress import Progress
    from runtime.request import GenerationRequest

log = logging.getLogger("yijian.runtime")

UPSCALERS = upscale.ModelCache()  # the last ESRGAN-family model used by the hires fix
LARGE_IMAGE = 1024 * 1024  # pixels above which the VAE decodes in tiles
DEFAULT_HIRES_STRENGTH = 0.7


@dataclass
class BatchOutput:
    images: list[Image.Image] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    negatives: list[str] = field(default_factory=list)
    templates: list[str | None] = field(default_factory=list)
    lora_hashes: dict[str, str] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, object] = field(default_factory=dict)  # this pass's own infotext keys (inpainting's)
    inpaint: Any = None  # the inpaint's prepared overlays (runtime.inpaint.prepare.Prepared), laid over the results


# --- placing a model --------------------------------------------------------------------------------------------


def place(pipe: Any, placement: Placement, *, compile_unet: bool = False) -> None:
    """Move the pipeline onto its device the way the VRAM preset says."""
    import torch

    if placement.device == "cpu" or placement.vram == "none":
        pipe.to(placement.device)
    elif placement.vram == "medvram":
        pipe.enable_model_cpu_offload()
    else:
        pipe.enable_sequential_cpu_offload()
    if placement.attention == "xformers":
        try:
            pipe.enable_xformers_memory_efficient_attention()
        except Exception as e:  # a broken xformers must not stop generation: SDPA is the default anyway
            log.warning("xformers could not be enabled (%s); using PyTorch SDPA", e)
    if placement.device == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        if compile_unet:
            pipe.unet = torch.compile(pipe.unet)
    pipe.vae.enable_slicing()
    pipe.set_progress_bar_config(disable=True)


def load_embeddings(pipe: Any, files: dict[str, Path], is_sdxl: bool) -> list[str]:
    """Register every textual-inversion embedding that fits this model; return the trigger words."""
    loaded = []
    for token, path in sorted(files.items()):
        try:
            if is_sdxl:
                from safetensors.torch import load_file

                state = load_file(str(path))
                if "clip_l" not in state or "clip_g" not in state:
                    continue
                pipe.load_textual_inversion(state["clip_l"], token=token, text_encoder=pipe.text_encoder,
                                            tokenizer=pipe.tokenizer)  # fmt: skip
                pipe.load_textual_inversion(state["clip_g"], token=token, text_encoder=pipe.text_encoder_2,
                                            tokenizer=pipe.tokenizer_2)  # fmt: skip
            else:
                pipe.load_textual_inversion(str(path), token=token)
            loaded.append(token)
        except Exception as e:  # an embedding for another architecture is skipped, as in A1111
            log.info("embedding %s skipped: %s", path.name, e)
    if loaded:
        log.info("Textual inversion embeddings loaded: %s", ", ".join(loaded))
    return loaded


def load_vae(path: Path, configs_root: Path, model: LoadedModel, own_vae: Any) -> Any:
    from diffusers import AutoencoderKL

    config = configs_root / model.architecture / "vae"
    kwargs: dict[str, Any] = {"dtype": own_vae.dtype, "local_files_only": True}
    if (config / "config.json").is_file():
        kwargs["config"] = str(config.parent)
        kwargs["subfolder"] = "vae"
    vae = AutoencoderKL.from_single_file(str(path), **kwargs)
    return vae.to(own_vae.device)


# --- helpers ----------------------------------------------------------------------------------------------------


def is_oom(e: BaseException) -> bool:
    import torch

    return isinstance(e, torch.cuda.OutOfMemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def hires_strength(req: GenerationRequest) -> float:
    return req.hr_denoising_strength if req.hr_denoising_strength is not None else DEFAULT_HIRES_STRENGTH


def img2img_steps(steps: int, strength: float) -> tuple[int, int]:
    """(schedule length, steps run) of an img2img pass, counted as A1111 1.10 counts them.

    A1111 (``setup_img2img_steps`` and the k-diffusion samplers' ``sample_img2img``) makes a schedule of
    ``steps`` and runs its last ``int(min(strength, 0.999) * steps) + 1``: at least one step, however small
    the strength (5 steps at 0.01 run one).
    """
    return steps, int(min(strength, 0.999) * steps) + 1


def hires_steps(steps: int, strength: float, longest: int = 1000) -> tuple[int, int]:
    """(schedule length, steps run) of the hires pass: A1111 runs all the hires steps, of a longer schedule.

    A1111 passes the hires steps to ``setup_img2img_steps``, which then makes a schedule of
    ``int(steps / min(strength, 0.999))`` and runs its last ``steps``.  At strength 0 (where A1111's
    schedule would be empty) one step at the lowest noise runs, as an img2img pass at that strength would.
    A diffusers schedule cannot be longer than the model's training steps (``longest``, 1000), where
    A1111's k-diffusion one can: there the steps run from the tail of a ``longest`` schedule.
    """
    if strength <= 0:
        return steps, 1
    schedule = max(steps, int(steps / min(strength, 0.999)))
    return min(schedule, max(longest, steps)), steps


def diffusers_strength(schedule: int, run: int) -> float:
    """The ``strength`` that makes diffusers' img2img run the last ``run`` steps of a ``schedule``-step schedule.

    diffusers runs ``int(schedule * strength)`` steps; the half step keeps a float rounding down from losing one.
    """
    return min(1.0, (run + 0.5) / schedule)


def _generators(placement: Placement, seeds: list[int]) -> list[Any]:
    import torch

    dev = "cuda" if placement.device == "cuda" else "cpu"
    return [torch.Generator(dev).manual_seed(s) for s in seeds]


def _img2img(model: LoadedModel) -> Any:
    from diffusers import AutoPipelineForImage2Image

    return inpaint_latents.derived_pipeline(model, "_img2img", AutoPipelineForImage2Image)


def _fit(image: Image.Image, width: int, height: int, mode: int) -> Image.Image:
    """A1111's resize modes (0 just resize, 1 crop and resize, 2 resize and fill), transparency on white."""
    from runtime.inpaint.prepare import flatten
    from runtime.inpaint.resize import resize_image

    return resize_image(mode, flatten(image), width, height)


def decode(model: LoadedModel, latents: Any) -> list[Image.Image]:
    import torch

    vae = model.pipe.vae
    scaled = latents / vae.config.scaling_factor
    shift = getattr(vae.config, "shift_factor", None)
    if shift:
        scaled = scaled + shift
    with torch.inference_mode():
        pixels = vae.decode(scaled.to(vae.dtype), return_dict=False)[0]
        if vae.dtype != torch.float32 and torch.isnan(pixels).any():
            log.warning("The VAE produced NaNs in half precision; decoding in fp32 from now on")
            vae.to(torch.float32)
            pixels = vae.decode(scaled.to(torch.float32), return_dict=False)[0]
    images: list[Image.Image] = model.pipe.image_processor.postprocess(pixels.float(), output_type="pil")
    return images


# --- one batch --------------------------------------------------------------------------------------------------


def _prompts(
    req: GenerationRequest, seeds: list[int], out: BatchOutput
) -> tuple[list[str], list[str], list[tuple[str, float, float]]]:
    refs: list[tuple[str, float, float]] = []
    clean_pos: list[str] = []
    clean_neg: list[str] = []
    for i, seed in enumerate(seeds):
        pos, chosen = resolve_choices(req.prompt, seed)
        neg, chosen_neg = resolve_choices(req.negative_prompt, seed)
        out.prompts.append(pos)
        out.negatives.append(neg)
        out.templates.append(req.prompt if (chosen or chosen_neg) else None)
        pos_clean, networks = extract_networks(pos)
        neg_clean, _ = extract_networks(neg)
        clean_pos.append(pos_clean)
        clean_neg.append(neg_clean)
        if i == 0:
            loras = [n for n in networks if n.kind in ("lora", "lyco")]
            refs = [(n.name, n.text_encoder_weight, n.weight) for n in loras if not n.problem]
            out.warnings += [(f"LoRA 标签 <{n.kind}:{n.name}…> 无效（{n.problem}），已忽略。",
                              f"LoRA tag <{n.kind}:{n.name}...> ignored: {n.problem}.") for n in loras if n.problem]  # fmt: skip
    return clean_pos, clean_neg, refs


def _callback(progress: Progress, cond: ConditioningSchedule) -> Any:
    def on_step(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        order = int(getattr(pipe.scheduler, "order", 1) or 1)  # second-order samplers call back twice a step
        progress.step((step + 1) // order)
        progress.preview((step + 1) // order, kwargs.get("latents"))
        if progress.interrupted or progress.skipped:  # a skip ends this batch's sampling; its images are kept
            pipe._interrupt = True
        guided = bool(getattr(pipe, "do_classifier_free_guidance", False))
        return cond.update_for_step((step + 1) // order, kwargs, guided=guided)

    return on_step


def run_batch(
    model: LoadedModel,
    lora: LoraSet,
    view: LibraryView,
    placement: Placement,
    req: GenerationRequest,
    seeds: list[int],
    progress: Progress,
    batch_no: int,
    subseeds: list[int] | None = None,
) -> BatchOutput:
    import torch

    out = BatchOutput()
    pos, neg, refs = _prompts(req, seeds, out)
    applied = lora.apply(refs, view.loras)
    out.lora_hashes = applied.hashes
    out.warnings += applied.warnings
    spec = samplers.resolve(req.sampler_name, req.scheduler)
    model.pipe.scheduler = samplers.make_scheduler(
        spec, model.scheduler_config, prediction_type="v_prediction" if model.v_prediction else None,
        sdxl=model.is_sdxl, eta=req.eta,
    )  # fmt: skip
    samplers.attach(model.pipe)
    if spec.warning:  # an unknown sampler or schedule type: A1111's default instead, said once
        log.warning("%s", spec.warning[1])
        out.warnings.append(spec.warning)
    encoder = PromptEncoder.from_pipeline(model.pipe, emphasis=req.emphasis)
    cond = ConditioningSchedule(encoder, pos, neg, req.steps, req.clip_skip, old_scheduling=req.old_scheduling)
    if cond.composable and req.cfg_scale <= 1:
        out.warnings.append(("提示词里的 AND（组合生成）需要 CFG 大于 1，本次按第一段提示词生成。",
                             "AND (composable prompts) needs a CFG scale above 1; this image used the first part only."))  # fmt: skip
    if req.width * req.height > LARGE_IMAGE or req.enable_hr or placement.vram == "lowvram":
        model.pipe.vae.enable_tiling()
    else:
        model.pipe.vae.disable_tiling()

    common: dict[str, Any] = {
        "guidance_scale": req.cfg_scale,
        "output_type": "latent",
        "callback_on_step_end_tensor_inputs": [*cond.callback_tensor_inputs, "latents"],  # latents: live previews
    }
    with seamless(model.pipe, req.tiling), torch.inference_mode():
        with composable_guidance(model.pipe, cond):
            if req.init_images:
                schedule, run = img2img_steps(req.steps, req.denoising_strength)
                progress.batch(batch_no, 0, run)
                run_kwargs = {"strength": diffusers_strength(schedule, run), "num_inference_steps": schedule,
                              "callback_on_step_end": _callback(progress, cond), **cond.at(0).pipeline_kwargs(), **common}  # fmt: skip
                if inpaint_hook.wanted(req, model):  # a mask, an inpainting model or a latent upscale: runtime/inpaint
                    if req.uses_variation_noise:
                        raise InvalidRequest("variation seeds and seed resize are not available for inpainting yet",
                                             field="subseed_strength",
                                             detail_zh="局部重绘还不支持变异种子和种子尺寸调整")  # fmt: skip
                    latents = inpaint_hook.img2img(model, req, seeds, _generators(placement, seeds), run_kwargs, out)
                else:
                    init = [_fit(req.init_images[i % len(req.init_images)], req.width, req.height, req.resize_mode)
                            for i in range(len(seeds))]  # fmt: skip
                    # A1111's img2img adds the noise txt2img starts from (its rng.next(): the seed's first draw, with
                    # the variation seed slerped in), not a draw made after the VAE sampled the init image
                    noise = _variation_noise(model, placement, req, seeds, subseeds or [], cond, always=True)
                    with inpaint_hook.noise_multiplier(model, req), replaced_noise(model.pipe.scheduler, noise):
                        latents = _img2img(model)(
                            image=init, generator=_generators(placement, seeds), **run_kwargs
                        ).images
            elif inpaint_hook.is_inpainting_model(model):  # an inpainting model's txt2img: all of it masked
                progress.batch(batch_no, 0, req.steps)
                run_kwargs = {"strength": 1.0, "num_inference_steps": req.steps, "callback_on_step_end": _callback(progress, cond),
                              **cond.at(0).pipeline_kwargs(), **common}  # fmt: skip
                latents = inpaint_hook.whole_image(model, None, req.width, req.height, seeds,
                                                   _generators(placement, seeds), run_kwargs)  # fmt: skip
            else:
                progress.batch(batch_no, 0, req.steps)
                noise = _variation_noise(model, placement, req, seeds, subseeds or [], cond)
                latents = model.pipe(width=req.width, height=req.height, num_inference_steps=req.steps,
                                     generator=_generators(placement, seeds), callback_on_step_end=_callback(progress, cond),
                                     latents=noise, **cond.at(0).pipeline_kwargs(), **common).images  # fmt: skip
        if req.enable_hr and not progress.interrupted and not progress.skipped:
            if req.hr_sampler_name or req.hr_scheduler:  # A1111's hires sampler / schedule type (None: the same)
                hr_spec = samplers.resolve(req.hr_sampler_name or req.sampler_name, req.hr_scheduler or req.scheduler)
                model.pipe.scheduler = samplers.make_scheduler(
                    hr_spec, model.scheduler_config, prediction_type="v_prediction" if model.v_prediction else None
                )
            hires_cond = _hires_conditioning(req, seeds, cond, encoder)
            latents = _hires(
                model, placement, req, seeds, progress, batch_no, hires_cond, latents, common, view.upscalers_dir
            )
        out.images = inpaint_hook.finish(out, decode(model, latents))
    return out


def _hires(model: LoadedModel, placement: Placement, req: GenerationRequest, seeds: list[int], progress: Progress,
           batch_no: int, cond: ConditioningSchedule, latents: Any, common: dict[str, Any], esrgan_dir: Path) -> Any:  # fmt: skip
    width, height = req.hires_size()
    steps = req.hr_second_pass_steps or req.steps
    strength = hires_strength(req)
    if upscale.is_latent(req.hr_upscaler):
        image: Any = upscale.upscale_latents(latents, req.hr_upscaler, size=(width // 8, height // 8))
    else:
        pictures = decode(model, latents)
        image = [upscale.upscale_image(p, req.hr_upscaler, size=(width, height), esrgan_dir=esrgan_dir,
                                       device=placement.device, cache=UPSCALERS) for p in pictures]  # fmt: skip
    schedule, run = hires_steps(steps, strength, int(model.scheduler_config.get("num_train_timesteps", 1000)))
    progress.batch(batch_no, 1, run)
    hires_cond = cond.for_hires_pass(steps)
    run_kwargs = {"strength": diffusers_strength(schedule, run), "num_inference_steps": schedule,
                  "callback_on_step_end": _callback(progress, hires_cond), **hires_cond.at(0).pipeline_kwargs(), **common}  # fmt: skip
    with composable_guidance(model.pipe, hires_cond):
        if inpaint_hook.is_inpainting_model(model):
            return inpaint_hook.whole_image(
                model, image, width, height, seeds, _generators(placement, seeds), run_kwargs
            )
        return _img2img(model)(image=image, generator=_generators(placement, seeds), **run_kwargs).images


def _variation_noise(model: LoadedModel, placement: Placement, req: GenerationRequest, seeds: list[int],
                     subseeds: list[int], cond: ConditioningSchedule, *, always: bool = False) -> Any:  # fmt: skip
    """The batch's starting noise when A1111's variation seed or seed resize is used (or ``always``); None
    otherwise (the pipeline then draws it from the same generators: the same first draw)."""
    resize = (req.seed_resize_from_w, req.seed_resize_from_h)
    if not always and not req.uses_variation_noise:
        return None
    subseeds = subseeds or seeds  # strength 0: the subseeds do not matter
    from runtime.noise import variation_noise

    scale = int(getattr(model.pipe, "vae_scale_factor", 8))
    shape = (int(model.pipe.unet.config.in_channels), req.height // scale, req.width // scale)
    dev = "cuda" if placement.device == "cuda" else "cpu"
    return variation_noise(seeds, subseeds, req.subseed_strength, shape, dev, resize, dtype=cond.at(0).positive.dtype)


def _hires_conditioning(req: GenerationRequest, seeds: list[int], cond: ConditioningSchedule,
                        encoder: PromptEncoder) -> ConditioningSchedule:  # fmt: skip
    """The first pass's schedule, or (A1111's ``hr_prompt`` / ``hr_negative_prompt``) one of the hires prompts.

    The hires pass's own schedule is made by ``_hires`` (``for_hires_pass``), so that A1111's timeline goes on.
    An empty hires prompt means the prompt, as in A1111; extra-network tags in a hires prompt are taken out
    of its text (the LoRAs of the first pass stay applied).
    """
    if not req.hr_prompt and not req.hr_negative_prompt:
        return cond
    pos, neg = [], []
    for seed in seeds:
        text, _ = resolve_choices(req.hr_prompt or req.prompt, seed)
        negative, _ = resolve_choices(req.hr_negative_prompt or req.negative_prompt, seed)
        pos.append(extract_networks(text)[0])
        neg.append(extract_networks(negative)[0])
    return ConditioningSchedule(encoder, pos, neg, cond.steps, cond.clip_skip, old_scheduling=cond.old_scheduling)
