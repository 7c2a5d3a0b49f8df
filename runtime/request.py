"""One generation request, as the engine takes it from the UI or the API.

Field names follow A1111's API (``cfg_scale``, ``n_iter``, ``enable_hr`` …)
so both front ends fill it the same way.  :meth:`GenerationRequest.check`
names the first bad field with a fix; it is the only validation the engine
relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from runtime.errors import InvalidRequest
from runtime.inpaint.fields import check_inpaint_fields
from runtime.prompts.attention import EMPHASIS_MODES

if TYPE_CHECKING:
    from PIL import Image

    from runtime.outputs import GridSpec

MAX_SIDE = 4096
MAX_STEPS = 1000  # A1111's API has no ceiling; a schedule cannot have more steps than the model's 1000 timesteps
MAX_IMAGES = 64


@dataclass
class GenerationRequest:
    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    sampler_name: str = "Euler a"
    scheduler: str = "Automatic"  # A1111's "Schedule type"
    eta: float | None = None  # A1111's eta; None: its default (1 for the ancestral and SDE samplers, 0 for DDIM)
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    seed: int = -1
    subseed: int = -1  # A1111's variation seed (-1: random) ...
    subseed_strength: float = 0.0  # ... and how far the noise moves towards it (slerp; 0 = not at all)
    seed_resize_from_w: int = 0  # A1111's "resize seed from": the noise of this size, centred (0 = off)
    seed_resize_from_h: int = 0
    styles: list[str] = field(default_factory=list)  # the styles applied to the prompts (recorded in info)
    n_iter: int = 1  # batch count
    batch_size: int = 1
    clip_skip: int = 1
    emphasis: str = "Original"  # A1111's "Emphasis" option: None, Ignore, Original, No norm
    old_scheduling: bool = False  # A1111's "use old prompt editing timelines"
    tiling: bool = False
    vae: str = "Automatic"
    model: str | None = None  # A1111's override_settings sd_model_checkpoint: a library name for this request
    restore_model: bool = True  # ... and the model before it loaded again afterwards
    # img2img
    init_images: list[Image.Image] = field(default_factory=list)
    denoising_strength: float = 0.75
    resize_mode: int = 0  # 0 just resize, 1 crop and resize, 2 resize and fill, 3 just resize (latent upscale)
    # inpainting (A1111's img2img fields; runtime/inpaint): the mask is white where the image is painted
    mask: Image.Image | None = None
    mask_blur_x: int = 4
    mask_blur_y: int = 4
    mask_round: bool = True
    inpainting_fill: int = 0  # masked content: 0 fill, 1 original, 2 latent noise, 3 latent nothing
    inpaint_full_res: bool = True  # inpaint area: True "only masked" (crop around the mask), False whole picture
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0  # mask mode: 1 paints what is NOT masked
    initial_noise_multiplier: float | None = None  # None: A1111's option default, 1.0
    # hires fix
    enable_hr: bool = False
    hr_scale: float = 2.0
    hr_upscaler: str = "Latent"
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_denoising_strength: float | None = None  # None: use denoising_strength like A1111's UI default 0.7
    hr_prompt: str = ""  # "" = the prompt (A1111's hires prompt)
    hr_negative_prompt: str = ""
    hr_sampler_name: str | None = None  # None = the first pass's sampler
    hr_scheduler: str | None = None
    save_images: bool = True
    grid: GridSpec | None = None  # A1111's grid of a batch (returned and/or saved), None: no grid
    controlnet: tuple[Any, ...] = ()  # ControlNet units (runtime.controlnet.units.Unit): the extension's script

    @property
    def mode(self) -> Literal["txt2img", "img2img"]:
        return "img2img" if self.init_images else "txt2img"

    @property
    def total_images(self) -> int:
        return self.n_iter * self.batch_size

    @property
    def noise_multiplier(self) -> float:
        return 1.0 if self.initial_noise_multiplier is None else self.initial_noise_multiplier

    def hires_size(self) -> tuple[int, int]:
        """The hires pass's size, a multiple of 8, like A1111's (resize_x/y win over the scale)."""
        if self.hr_resize_x or self.hr_resize_y:
            w = self.hr_resize_x or round(self.width * self.hr_resize_y / self.height)
            h = self.hr_resize_y or round(self.height * self.hr_resize_x / self.width)
        else:
            w, h = round(self.width * self.hr_scale), round(self.height * self.hr_scale)
        return (w // 8) * 8, (h // 8) * 8

    def with_(self, **changes: Any) -> GenerationRequest:
        return replace(self, **changes)

    @property
    def uses_variation_noise(self) -> bool:
        """A1111's variation seed or seed resize is asked for."""
        return bool(self.subseed_strength) or (self.seed_resize_from_w > 0 and self.seed_resize_from_h > 0)

    def check(self) -> GenerationRequest:
        """Raise :class:`InvalidRequest` naming the first bad field; return self when all is well."""

        def bad(name: str, zh: str, en: str) -> InvalidRequest:
            return InvalidRequest(en, field=name, detail_zh=zh)

        for name in ("width", "height"):
            v = getattr(self, name)
            if not 64 <= v <= MAX_SIDE:
                raise bad(name, f"{v} 不在 64 到 {MAX_SIDE} 之间", f"{v} is not between 64 and {MAX_SIDE}")
            if v % 8:
                lo, hi = v // 8 * 8, v // 8 * 8 + 8
                raise bad(
                    name, f"{v} 不是 8 的倍数（可用 {lo} 或 {hi}）", f"{v} is not a multiple of 8 (use {lo} or {hi})"
                )
        if not 1 <= self.steps <= MAX_STEPS:
            raise bad(
                "steps",
                f"{self.steps} 不在 1 到 {MAX_STEPS} 之间（模型只有 {MAX_STEPS} 个训练时间步）",
                f"{self.steps} is not between 1 and {MAX_STEPS} (the model has {MAX_STEPS} training timesteps)",
            )
        if not 0 <= self.cfg_scale <= 30:
            raise bad("cfg_scale", "应在 0 到 30 之间", "must be between 0 and 30")
        if self.n_iter < 1 or self.batch_size < 1 or self.total_images > MAX_IMAGES:
            raise bad("batch_size", f"批次数×每批数量应在 1 到 {MAX_IMAGES} 之间",
                      f"n_iter x batch_size must be between 1 and {MAX_IMAGES}")  # fmt: skip
        if not 1 <= self.clip_skip <= 12:
            raise bad("clip_skip", "应在 1 到 12 之间", "must be between 1 and 12")
        if self.emphasis not in EMPHASIS_MODES:
            modes = ", ".join(EMPHASIS_MODES)
            raise bad("emphasis", f"{self.emphasis!r} 不是可用的强调模式（{modes}）",
                      f"{self.emphasis!r} is not an emphasis mode ({modes})")  # fmt: skip
        for name in ("seed", "subseed"):
            if not -1 <= getattr(self, name) < 2**32:
                raise bad(name, "应为 -1（随机）或 0 到 4294967295", "must be -1 (random) or 0 to 4294967295")
        if not 0.0 <= self.subseed_strength <= 1.0:
            raise bad("subseed_strength", "应在 0 到 1 之间", "must be between 0 and 1")
        for name in ("seed_resize_from_w", "seed_resize_from_h"):
            v = getattr(self, name)
            if v > 0 and not 64 <= v <= MAX_SIDE:
                raise bad(name, f"应为 0（关闭）或 64 到 {MAX_SIDE}", f"must be 0 (off) or 64 to {MAX_SIDE}")
        if self.init_images and self.mask is not None and self.uses_variation_noise:
            raise bad("subseed_strength", "局部重绘还不支持变异种子和种子尺寸调整，请设为 0",
                      "variation seeds and seed resize are not available for inpainting yet: send 0")  # fmt: skip
        if self.init_images and not 0.0 < self.denoising_strength <= 1.0:
            raise bad("denoising_strength", "应在 0 到 1 之间（不含 0）", "must be above 0 and at most 1")
        if self.init_images:
            check_inpaint_fields(self, bad)
        if self.enable_hr:
            w, h = self.hires_size()
            if not (64 <= w <= MAX_SIDE and 64 <= h <= MAX_SIDE):
                raise bad("hr_scale", f"高清修复后的尺寸 {w}x{h} 超出范围", f"the hires size {w}x{h} is out of range")
            if self.hr_second_pass_steps < 0 or self.hr_second_pass_steps > MAX_STEPS:
                raise bad("hr_second_pass_steps", f"应在 0 到 {MAX_STEPS} 之间", f"must be 0 to {MAX_STEPS}")
        return self
