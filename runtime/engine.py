"""The generation engine: one model on the device, one request at a time.

:class:`Engine` owns the loaded model and where it runs (:mod:`runtime.device`),
the LoRA adapters, the progress/interrupt state and the output folder.
Front ends (the Gradio UI and the A1111 API) only build a
:class:`~runtime.request.GenerationRequest` and call :meth:`Engine.generate`;
the sampling passes themselves are in :mod:`runtime.passes`.  One lock makes
concurrent requests queue instead of fighting over the GPU, and it is the
only way to the model: model and VAE swaps, LoRA changes (made by a
generation) and option changes all take it, so a generation finishes with
the model it began with.  Progress and interrupt never take it.

Nothing here imports Gradio or FastAPI.
"""

from __future__ import annotations

import gc
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bootstrap.layout import Bundle
from runtime import device, extras, passes, samplers, upscale
from runtime.checkpoints import (
    Checkpoint,
    LibraryView,
    LoadedModel,
    check_loadable,
    demo_model,
    find_checkpoint,
    load_checkpoint,
    read_library,
)
from runtime.controlnet import models as cn_models
from runtime.controlnet.demo import demo_folder, ensure_demo_controlnet
from runtime.controlnet.hook import controlled_unet
from runtime.controlnet.run import ModelCache, Prepared, prepare_units
from runtime.controlnet.units import infotext_items
from runtime.errors import Interrupted, ModelLoadFailed, ModelNotFound, NoModel, OutOfMemory
from runtime.inpaint import hook as inpaint_hook
from runtime.lora import LoraSet
from runtime.outputs import OutputFolder
from runtime.pnginfo import format_parameters
from runtime.progress import Progress
from runtime.request import GenerationRequest

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("yijian.runtime")

VERSION_TAG = "yijian"
T = TypeVar("T")


@dataclass
class EngineSettings:
    vram: str = "auto"
    attention: str = "auto"
    precision: str = "auto"
    allow_ckpt: bool = False
    compile: bool = False
    extra_model_dirs: tuple[str, ...] = ()
    own_paths: tuple[str, ...] = ()  # checkpoints the runtime's own command line named (--model/--ckpt)
    configs_root: Path | None = None  # default: <bundle>/cache/configs


@dataclass
class GenerationResult:
    images: list[Image.Image]
    paths: list[Path]
    seeds: list[int]
    prompts: list[str]
    negative_prompts: list[str]
    infotexts: list[str]
    info: dict[str, Any]
    warnings: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    subseeds: list[int] = field(default_factory=list)
    index_of_first_image: int = 0  # 1 when A1111's grid is the first of ``images``
    grid_path: Path | None = None
    detected_maps: list[Image.Image] = field(default_factory=list)  # ControlNet's, returned after the images


def batch_seeds_of(req: GenerationRequest) -> tuple[list[int], list[int]]:
    """Each image's seed and subseed, as A1111's ``process_images`` numbers them.

    Image *i* gets seed + *i*, except with a variation strength: then every image has the seed and
    subseed + *i* (A1111's variations of one picture).  -1 is a random seed or subseed.
    """
    count = req.total_images
    seed = req.seed if req.seed >= 0 else secrets.randbelow(2**32)
    subseed = req.subseed if req.subseed >= 0 else secrets.randbelow(2**32)
    seeds = [(seed + (0 if req.subseed_strength else i)) % 2**32 for i in range(count)]
    return seeds, [(subseed + i) % 2**32 for i in range(count)]


class Engine:
    def __init__(self, bundle: Bundle, settings: EngineSettings | None = None) -> None:
        self.bundle = bundle
        self.settings = settings or EngineSettings()
        self.configs_root = self.settings.configs_root or bundle.cache_dir / "configs"
        self.progress = Progress()
        self.outputs = OutputFolder(bundle.outputs_dir)
        self.model: LoadedModel | None = None
        self.placement: device.Placement | None = None
        self.lora: LoraSet | None = None
        self.vae_name = "Automatic"
        self._own_vae: Any = None
        self._lock = threading.Lock()
        self.controlnets = ModelCache()  # the ControlNet networks in use (loaded once for several units)
        self.clip_skip = 1  # A1111's CLIP_stop_at_last_layers option: the default of requests that name none
        self.own_paths = tuple(Path(p) for p in self.settings.own_paths)
        self.view: LibraryView = read_library(bundle, self.settings.extra_model_dirs)
        self.embeddings_loaded: list[str] = []  # trigger words of the embeddings the loaded model took
        self._demo: Checkpoint | None = None  # the demo model, once --demo loaded it: listed and switchable
        self._unloaded: Checkpoint | None = None  # what /unload-checkpoint took off, for /reload-checkpoint

    # --- models ---------------------------------------------------------------------------------------------------
    def refresh(self) -> LibraryView:
        # No engine lock: the view is an immutable snapshot replaced in one assignment, and a generation keeps the
        # one it started with; a rescan must not wait for a long generation.
        self.view = read_library(self.bundle, self.settings.extra_model_dirs)
        return self.view

    @property
    def checkpoints(self) -> list[Checkpoint]:
        return [self._demo, *self.view.checkpoints] if self._demo is not None else self.view.checkpoints

    def load_demo(self) -> LoadedModel:
        with self._lock:
            self._release()
            loaded = self._install(demo_model())
            self._demo = loaded.checkpoint
            ensure_demo_controlnet(self.bundle.cache_dir, loaded.pipe.unet)
            return loaded

    def controlnet_folders(self) -> list[Path]:
        """Where ControlNet models are listed from: the bundle's folders, and the demo's while it is loaded."""
        demo = [demo_folder(self.bundle.cache_dir)] if self.model is not None and self.model.is_demo else []
        return [*cn_models.model_folders(self.bundle.root), *demo]

    def refresh_embeddings(self) -> list[str]:
        """Rescan the library and give the loaded model the embeddings it does not have yet."""
        with self._lock:
            self.refresh()
            if self.model is not None:
                new = {t: p for t, p in self.view.embeddings.items() if t not in self.embeddings_loaded}
                self.embeddings_loaded += passes.load_embeddings(self.model.pipe, new, self.model.is_sdxl)
            return list(self.embeddings_loaded)

    def unload(self) -> None:
        """A1111's ``/unload-checkpoint``: free the model's memory; ``reload`` loads the same one again."""
        with self._lock:
            if self.model is not None:
                self._unloaded = self.model.checkpoint
                self._release()

    def reload(self) -> LoadedModel | None:
        """A1111's ``/reload-checkpoint``: load the model ``unload`` took off (a no-op when one is loaded)."""
        with self._lock:
            if self.model is not None or self._unloaded is None:
                return self.model
            loaded = self._switch_to(self._unloaded)
            self._unloaded = None
            return loaded

    def load(self, wanted: str) -> LoadedModel:
        """Load the checkpoint named ``wanted`` (title, name, hash, or a path the command line gave).

        A no-op when it is loaded.  When it cannot be loaded, the model loaded before stays loaded.
        """
        with self._lock:
            return self._switch(wanted)

    def set_options(
        self, *, checkpoint: str | None = None, vae: str | None = None, clip_skip: int | None = None
    ) -> None:
        """``POST /options``: change the model, the VAE and the default clip skip, in that order, under the lock."""
        with self._lock:
            if checkpoint is not None:
                self._switch(checkpoint)
            if vae is not None:
                self._select_vae(vae)
            if clip_skip is not None:
                self.clip_skip = clip_skip

    def select_vae(self, name: str) -> None:
        """Use the model's own VAE (``Automatic``/``None``) or a file from models/VAE."""
        with self._lock:
            self._select_vae(name)

    # Everything below whose name starts with "_" runs with self._lock held: the lock is the one gate to the
    # model, its VAE, its LoRA adapters and the options, and generation holds it from start to end.
    def _switch(self, wanted: str) -> LoadedModel:
        if self.model is not None and self.model.checkpoint.matches(wanted):
            return self.model
        if self._demo is not None and self._demo.matches(wanted):
            return self._switch_to(self._demo)
        return self._switch_to(find_checkpoint(self.view, wanted, self.own_paths))

    def _switch_to(self, ckpt: Checkpoint) -> LoadedModel:
        if self.model is not None and self.model.checkpoint.path == ckpt.path:
            return self.model
        placement = device.resolve(self.settings, ckpt.architecture or "sd15")
        # What can be refused without reading weights (a pickle without --allow-ckpt, an unknown architecture, a
        # missing config folder) is refused first, with the old model untouched.  Then the old model is dropped
        # BEFORE the new one is read: two models at once would need twice the memory, and with --medvram (weights
        # in RAM) two SDXL models do not fit a 16 GB PC.  Should reading or placing the new one fail (a damaged
        # file, out of memory), the old one is read again from its file, so a failed switch keeps it.
        check_loadable(ckpt, self.configs_root, allow_pickle=self.settings.allow_ckpt)
        previous = self.model.checkpoint if self.model is not None else None
        self._release()
        try:
            return self._install(self._read(ckpt, placement), placement)
        except Exception as e:
            self._release()
            if previous is not None:
                self._reinstall(previous)
            if passes.is_oom(e):
                passes.free_memory()
                zh, en = device.oom_advice(placement, 512, 512)
                raise OutOfMemory(str(e).splitlines()[0][:200], advice_zh=zh, advice_en=en) from e
            raise

    def _read(self, ckpt: Checkpoint, placement: device.Placement) -> LoadedModel:
        if ckpt.format == "demo":
            return demo_model()
        loaded = load_checkpoint(ckpt, self.configs_root, allow_pickle=self.settings.allow_ckpt, dtype=placement.dtype)
        if ckpt.path.is_file() and not ckpt.sha256:
            from launcher.models.hashes import HashCache

            loaded.checkpoint = Checkpoint(ckpt.path, ckpt.format, ckpt.architecture, ckpt.v_prediction,
                                           HashCache.for_bundle(self.bundle).sha256(ckpt.path))  # fmt: skip
            self.refresh()
        return loaded

    def _reinstall(self, ckpt: Checkpoint) -> None:
        try:
            placement = device.resolve(self.settings, ckpt.architecture or "sd15")
            self._install(self._read(ckpt, placement), placement)
            log.warning("Model switch failed; %s is loaded again", ckpt.title)
        except Exception:  # the error the caller raises matters more; this one goes to the log
            self._release()
            log.exception("Model switch failed and %s could not be loaded again", ckpt.title)

    def _release(self) -> None:
        if self.model is None:
            return
        self.model = self.lora = None
        self._own_vae = None
        self.embeddings_loaded = []
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is always there in the runtime env
            pass

    def _install(self, loaded: LoadedModel, placement: device.Placement | None = None) -> LoadedModel:
        placement = placement or device.resolve(self.settings, loaded.architecture)
        passes.place(loaded.pipe, placement, compile_unet=self.settings.compile)
        self.embeddings_loaded = passes.load_embeddings(loaded.pipe, self.view.embeddings, loaded.is_sdxl)
        self.model, self.placement = loaded, placement
        self.lora = LoraSet(loaded.pipe, loaded.architecture)
        self._own_vae = loaded.pipe.vae
        self.vae_name = "Automatic"
        log.info("Model %s loaded in %.1f s (%s)", loaded.checkpoint.title, loaded.load_seconds, placement.reason)
        return loaded

    def _select_vae(self, name: str) -> None:
        model = self._require_model()
        if name in ("", "Automatic", "None"):
            model.pipe.vae = self._own_vae
        elif name != self.vae_name:
            path = self.view.vaes.get(name)
            if path is None:
                raise ModelNotFound(f"VAE {name}")
            try:
                vae = passes.load_vae(path, self.configs_root, model, self._own_vae)
            except Exception as e:  # a broken file: the VAE in use stays
                log.exception("loading the VAE %s failed", path)
                raise ModelLoadFailed(f"{type(e).__name__}: {e}", model=name) from e
            model.pipe.vae = vae
        self.vae_name = name if name not in ("", "None") else "Automatic"

    def _require_model(self) -> LoadedModel:
        if self.model is None:
            raise NoModel()
        return self.model

    # --- Extras ---------------------------------------------------------------------------------------------------
    def postprocess(self, images: Sequence[Image.Image], opts: extras.ExtrasOptions
                    ) -> list[tuple[Image.Image, dict[str, Any]]]:  # fmt: skip
        """A1111's Extras upscale of each image (under the engine lock: the GPU is one queue, as A1111's)."""
        opts.check()
        with self._lock:
            where = self.placement.device if self.placement is not None else (
                "cuda" if device.cuda_available() else "cpu")  # fmt: skip

            def run_model(image: Image.Image, info: upscale.UpscalerInfo, size: tuple[int, int]) -> Image.Image:
                return upscale.upscale_image(image, info, size=size, device=where, cache=passes.UPSCALERS)

            return [extras.postprocess(image, opts, [self.view.upscalers_dir], run_model) for image in images]

    def exclusive(self, work: Callable[[], T]) -> T:
        """Run ``work`` (an Extras upscale …) with the device to itself: after and before any generation."""
        with self._lock:
            return work()

    # --- generation -----------------------------------------------------------------------------------------------
    def interrupt(self) -> None:
        self.progress.interrupt()

    def generate(self, req: GenerationRequest) -> GenerationResult:
        req.check()
        with self._lock:
            if not req.model:
                return self._generate(req)
            # A1111's override_settings {"sd_model_checkpoint": ...}: this request's model, then (by default) the
            # model before it again
            before = self.model.checkpoint if self.model is not None else None
            self._switch(req.model)
            try:
                return self._generate(req)
            finally:
                if req.restore_model and before is not None:
                    try:
                        self._switch_to(before)
                    except Exception:  # the images are made: they are answered; the model stays the request's
                        log.exception("override_settings: %s could not be loaded again", before.title)

    def _generate(self, req: GenerationRequest) -> GenerationResult:
        model, view = self._require_model(), self.view  # this generation's library, whatever a refresh does
        assert self.placement is not None and self.lora is not None
        if req.vae != self.vae_name:
            self._select_vae(req.vae)
        started = time.perf_counter()
        seeds, subseeds = batch_seeds_of(req)
        self.progress.begin(req.mode, req.n_iter, passes=2 if req.enable_hr else 1, architecture=model.architecture)
        result = GenerationResult([], [], [], [], [], [], {})
        try:
            control = self._controlnet(req, model)
            result.detected_maps = control.maps
            with controlled_unet(model.pipe, control.units, self.progress.position):
                for batch_no in range(req.n_iter):
                    if self.progress.interrupted:
                        break
                    part = slice(batch_no * req.batch_size, (batch_no + 1) * req.batch_size)
                    done = passes.run_batch(model, self.lora, view, self.placement, req, seeds[part],
                                            self.progress, batch_no, subseeds[part])  # fmt: skip
                    self.progress.batch_done()
                    result.warnings.extend(w for w in done.warnings if w not in result.warnings)
                    for i, image in enumerate(done.images):
                        seed, subseed = seeds[part][i], subseeds[part][i]
                        text = self._parameters(req, model, seed, done, i, subseed)
                        result.images.append(image)
                        result.seeds.append(seed)
                        result.subseeds.append(subseed)
                        result.prompts.append(done.prompts[i])
                        result.negative_prompts.append(done.negatives[i])
                        result.infotexts.append(text)
                        if req.save_images:
                            result.paths.append(self.outputs.save(image, kind=req.mode, seed=seed, parameters=text))
            self._grid(req, result)
        except Exception as e:
            if passes.is_oom(e):
                passes.free_memory()
                zh, en = device.oom_advice(self.placement, req.width, req.height)
                raise OutOfMemory(str(e).splitlines()[0][:200], advice_zh=zh, advice_en=en) from e
            raise
        finally:
            self.progress.end()
        result.interrupted = self.progress.interrupted
        if not result.images and result.interrupted:
            raise Interrupted()
        result.seconds = time.perf_counter() - started
        result.info = self._info(req, model, result)
        return result

    def _grid(self, req: GenerationRequest, result: GenerationResult) -> None:
        """A1111's grid of the batch: the first of ``images`` (``return_grid``) and/or saved (``grid_save``)."""
        if req.grid is None or not req.grid.wanted(len(result.images)):
            return
        from runtime.outputs import image_grid

        grid = image_grid(result.images, req.batch_size, req.grid)
        text = result.infotexts[0]  # A1111 writes the first image's parameters (its main prompt) into the grid
        if req.grid.save:
            result.grid_path = self.outputs.save_grid(grid, kind=req.mode, parameters=text)
        if req.grid.return_grid:
            result.images.insert(0, grid)
            result.infotexts.insert(0, text)
            result.index_of_first_image = 1

    def _controlnet(self, req: GenerationRequest, model: LoadedModel) -> Prepared:
        """The request's ControlNet units, preprocessed and with their models loaded (none: nothing to do)."""
        if not req.controlnet:
            return Prepared([], [], [])
        return prepare_units(req.controlnet, unet=model.pipe.unet, architecture=model.architecture or "sd15",
                             width=req.width, height=req.height, folders=self.controlnet_folders(),
                             cache=self.controlnets, fallback_image=req.init_images[0] if req.init_images else None)  # fmt: skip

    def _parameters(
        self,
        req: GenerationRequest,
        model: LoadedModel,
        seed: int,
        done: passes.BatchOutput,
        i: int,
        subseed: int = -1,
    ) -> str:
        ckpt = model.checkpoint
        # A1111 >= 1.9 writes the sampler and its schedule apart: "DPM++ 2M Karras" -> DPM++ 2M, Karras
        sampler = samplers.resolve(req.sampler_name, req.scheduler)
        fields: dict[str, object] = {"Steps": req.steps, **sampler.infotext(req.eta)}
        fields.update({"CFG scale": req.cfg_scale, "Seed": seed})
        if req.subseed_strength:
            fields.update({"Variation seed": subseed, "Variation seed strength": req.subseed_strength})
        if req.seed_resize_from_w > 0 and req.seed_resize_from_h > 0:
            fields["Seed resize from"] = f"{req.seed_resize_from_w}x{req.seed_resize_from_h}"
        fields["Size"] = f"{req.width}x{req.height}"
        if ckpt.short_hash:
            fields["Model hash"] = ckpt.short_hash
        fields["Model"] = ckpt.model_name
        if self.vae_name != "Automatic":
            fields["VAE"] = self.vae_name
        if req.mode == "img2img":
            fields["Denoising strength"] = req.denoising_strength
            fields.update(done.fields)  # inpainting's: Mask blur, Inpaint area, Masked content ... (runtime/inpaint)
            if req.noise_multiplier != 1.0:
                fields["Noise multiplier"] = req.noise_multiplier
        if req.clip_skip > 1:
            fields["Clip skip"] = req.clip_skip
        if req.emphasis != "Original" and any("(" in p or "[" in p for p in (req.prompt, req.negative_prompt)):
            fields["Emphasis"] = req.emphasis  # as A1111 1.10 (sd_hijack_clip) records it
        if req.old_scheduling:
            fields["Old prompt editing timelines"] = True
        if req.tiling:
            fields["Tiling"] = True
        if req.enable_hr:
            w, h = req.hires_size()
            fields["Denoising strength"] = passes.hires_strength(req)
            if req.hr_resize_x or req.hr_resize_y:
                fields["Hires resize"] = f"{w}x{h}"
            else:
                fields["Hires upscale"] = req.hr_scale
            if req.hr_second_pass_steps:
                fields["Hires steps"] = req.hr_second_pass_steps
            fields["Hires upscaler"] = req.hr_upscaler
            if req.hr_sampler_name or req.hr_scheduler:  # what ran (a misspelled name fell back, with a warning)
                hires = samplers.resolve(req.hr_sampler_name or req.sampler_name, req.hr_scheduler or req.scheduler)
                if req.hr_sampler_name and hires.name != sampler.name:
                    fields["Hires sampler"] = hires.name
                if req.hr_scheduler and hires.schedule != sampler.schedule:
                    fields["Hires schedule type"] = hires.schedule
            if req.hr_prompt and req.hr_prompt != req.prompt:
                fields["Hires prompt"] = req.hr_prompt
            if req.hr_negative_prompt and req.hr_negative_prompt != req.negative_prompt:
                fields["Hires negative prompt"] = req.hr_negative_prompt
        if done.lora_hashes:
            fields["Lora hashes"] = ", ".join(f"{k}: {v}" for k, v in done.lora_hashes.items())
        if done.templates[i] is not None:
            fields["Template"] = done.templates[i]
        if model.is_demo:
            fields["Note"] = "demo model with random weights"
        fields.update(infotext_items(list(req.controlnet)))  # the extension's "ControlNet 0: …", before Version
        fields["Version"] = VERSION_TAG
        return format_parameters(done.prompts[i], done.negatives[i], fields)

    def _info(self, req: GenerationRequest, model: LoadedModel, r: GenerationResult) -> dict[str, Any]:
        """A1111's ``info`` object (the API returns it as a JSON string)."""
        ckpt = model.checkpoint
        return {
            "prompt": r.prompts[0] if r.prompts else req.prompt,
            "all_prompts": r.prompts,
            "negative_prompt": r.negative_prompts[0] if r.negative_prompts else req.negative_prompt,
            "all_negative_prompts": r.negative_prompts,
            "seed": r.seeds[0] if r.seeds else req.seed,
            "all_seeds": r.seeds,
            "subseed": r.subseeds[0] if r.subseeds else req.subseed,
            "all_subseeds": r.subseeds,
            "subseed_strength": req.subseed_strength,
            "width": req.width,
            "height": req.height,
            "sampler_name": samplers.resolve(req.sampler_name, req.scheduler).name,  # as A1111 corrects it
            "cfg_scale": req.cfg_scale,
            "steps": req.steps,
            "batch_size": req.batch_size,
            "restore_faces": False,
            "face_restoration_model": None,
            "sd_model_name": ckpt.model_name,
            "sd_model_hash": ckpt.short_hash,
            "sd_vae_name": None if self.vae_name == "Automatic" else self.vae_name,
            "sd_vae_hash": None,
            "seed_resize_from_w": req.seed_resize_from_w if req.seed_resize_from_w > 0 else -1,
            "seed_resize_from_h": req.seed_resize_from_h if req.seed_resize_from_h > 0 else -1,
            "denoising_strength": passes.hires_strength(req) if req.enable_hr else (
                req.denoising_strength if req.mode == "img2img" else 0),
            "extra_generation_params": {},
            "index_of_first_image": r.index_of_first_image,
            "infotexts": r.infotexts,
            "styles": list(req.styles),
            "job_timestamp": datetime.now().strftime("%Y%m%d%H%M%S"),
            "clip_skip": req.clip_skip,
            "is_using_inpainting_conditioning": inpaint_hook.is_inpainting_model(model),
            "version": VERSION_TAG,
            "interrupted": r.interrupted,
            "seconds": round(r.seconds, 3),
        }  # fmt: skip
