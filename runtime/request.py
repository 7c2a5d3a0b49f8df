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
from runtime.prompts.attention import EMPHASIS_MODES

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 4096
MAX_STEPS = 150
MAX_IMAGES = 64


@dataclass
class GenerationRequest:
    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    sampler_name: str = "Euler a"
    scheduler: str = "Automatic"  # A1111's "Schedule type"
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    seed: int = -1
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
    resize_mode: int = 0  # 0 just resize, 1 crop and resize, 2 resize and fill
    # hires fix
    enable_hr: bool = False
    hr_scale: float = 2.0
    hr_upscaler: str = "Latent"
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_denoising_strength: float | None = None  # None: use denoising_strength like A1111's UI default 0.7
    save_images: bool = True
    controlnet: tuple[Any, ...] = ()  # ControlNet units (runtime.controlnet.units.Unit): the extension's script

    @property
    def mode(self) -> Literal["txt2img", "img2img"]:
        return "img2img" if self.init_images else "txt2img"

    @property
    def total_images(self) -> int:
        return self.n_iter * self.batch_size

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
                "steps", f"{self.steps} 不在 1 到 {MAX_STEPS} 之间", f"{self.steps} is not between 1 and {MAX_STEPS}"
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
        if self.seed < -1 or self.seed >= 2**32:
            raise bad("seed", "应为 -1（随机）或 0 到 4294967295", "must be -1 (random) or 0 to 4294967295")
        if self.init_images and not 0.0 < self.denoising_strength <= 1.0:
            raise bad("denoising_strength", "应在 0 到 1 之间（不含 0）", "must be above 0 and at most 1")
        if self.enable_hr:
            w, h = self.hires_size()
            if not (64 <= w <= MAX_SIDE and 64 <= h <= MAX_SIDE):
                raise bad("hr_scale", f"高清修复后的尺寸 {w}x{h} 超出范围", f"the hires size {w}x{h} is out of range")
            if self.hr_second_pass_steps < 0 or self.hr_second_pass_steps > MAX_STEPS:
                raise bad("hr_second_pass_steps", f"应在 0 到 {MAX_STEPS} 之间", f"must be 0 to {MAX_STEPS}")
        return self
