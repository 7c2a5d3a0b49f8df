"""The Extras tab's work (A1111's "postprocessing"): upscale an image after the fact, with a second upscaler blended in.

The rules are A1111 1.10's (scripts/postprocessing_upscale.py, modules/upscaler.py, modules/postprocessing.py),
so a user's settings give the image they gave there:

* **Scale by** ``f``: the target is ``int(w·f) // 8 · 8`` by ``int(h·f) // 8 · 8`` (A1111 rounds the target down
  to a multiple of 8).  **Scale to** ``W×H``: the factor is ``max(W/w, H/h)``, then the same rounding; with
  "Crop to fit" the result is centred on a black ``W×H`` canvas (so the overflow is cut off evenly).
* A resampler (Lanczos, Nearest) first resizes to ``int(w·f)``, then to the rounded target with Lanczos when
  that differs; a model runs up to three times until the target is covered, then Lanczos to the exact target.
* **Upscaler 2** with a visibility ``v`` > 0 upscales the same input again and is blended in: ``(1-v)·a + v·b``.
* The image is converted to RGB first; the info keys are A1111's ("Postprocess upscale by", "Postprocess
  upscale to", "Postprocess crop to", "Postprocess upscaler", "Postprocess upscaler 2"), joined as A1111's
  infotext, and saved in the PNG as ``postprocessing`` and ``extras`` beside the source's own ``parameters``.

Face restoration (GFPGAN, CodeFormer) is not part of this runtime yet: a request that asks for it gets
:class:`~runtime.errors.FeatureNotAvailable` (501), never an image that silently skipped it.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bootstrap.errors import ExitCode, YijianError
from runtime import upscale
from runtime.errors import FeatureNotAvailable
from runtime.upscale.registry import Kind, UpscalerInfo

NONE = "None"


class ExtrasInvalid(YijianError):
    code = "EXTRAS_INVALID"
    exit_code = ExitCode.USAGE
    zh = "后期处理参数 {field} 无效：{detail_zh}"
    en = "Invalid Extras setting {field}: {detail}"
    hint_zh = "按 A1111 的取值范围修改后再试。"
    hint_en = "Use a value in A1111's range and try again."


@dataclass(frozen=True)
class ExtrasOptions:
    """A1111's Extras settings (the API's ExtrasBaseRequest fields, with its defaults)."""

    resize_mode: int = 0  # 0: scale by upscaling_resize; 1: scale to upscaling_resize_w × _h
    upscaling_resize: float = 2.0
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True
    upscaler_1: str = NONE
    upscaler_2: str = NONE
    extras_upscaler_2_visibility: float = 0.0
    gfpgan_visibility: float = 0.0
    codeformer_visibility: float = 0.0
    codeformer_weight: float = 0.0

    def check(self) -> None:
        def bad(field: str, en: str, zh: str) -> ExtrasInvalid:
            return ExtrasInvalid(field=field, detail=en, detail_zh=zh)

        if self.resize_mode not in (0, 1):
            raise bad("resize_mode", "must be 0 (scale by) or 1 (scale to)", "应为 0（按倍数）或 1（按尺寸）")
        if not 1.0 <= self.upscaling_resize <= 8.0:
            raise bad("upscaling_resize", "must be from 1 to 8", "应在 1 到 8 之间")
        for field in ("upscaling_resize_w", "upscaling_resize_h"):
            if not 1 <= int(getattr(self, field)) <= 16384:
                raise bad(field, "must be from 1 to 16384", "应在 1 到 16384 之间")
        if not 0.0 <= self.extras_upscaler_2_visibility <= 1.0:
            raise bad("extras_upscaler_2_visibility", "must be from 0 to 1", "应在 0 到 1 之间")
        for field in ("gfpgan_visibility", "codeformer_visibility"):
            if getattr(self, field) > 0:
                raise FeatureNotAvailable(feature=f"face restoration (GFPGAN / CodeFormer; {field} must be 0)",
                                          feature_zh=f"面部修复（GFPGAN / CodeFormer；{field} 必须为 0）")  # fmt: skip


Upscale = Callable[[Image.Image, UpscalerInfo, tuple[int, int]], Image.Image]


def rounded_target(width: int, height: int, factor: float) -> tuple[int, int]:
    """A1111's ``Upscaler.upscale`` target: each side times ``factor``, rounded down to a multiple of 8."""
    return int((width * factor) // 8 * 8), int((height * factor) // 8 * 8)


def _one(image: Image.Image, info: UpscalerInfo, opts: ExtrasOptions, notes: dict[str, Any], run_model: Upscale
         ) -> Image.Image:  # fmt: skip
    if opts.resize_mode == 1:
        factor = max(opts.upscaling_resize_w / image.width, opts.upscaling_resize_h / image.height)
        notes["Postprocess upscale to"] = f"{opts.upscaling_resize_w}x{opts.upscaling_resize_h}"
    else:
        factor = opts.upscaling_resize
        notes["Postprocess upscale by"] = factor
    target = rounded_target(image.width, image.height, factor)
    if target[0] < 1 or target[1] < 1:
        raise ExtrasInvalid(field="upscaling_resize", detail=f"the result would be {target[0]}x{target[1]}",
                            detail_zh=f"结果尺寸为 {target[0]}x{target[1]}")  # fmt: skip
    if info.kind is Kind.RESAMPLE:
        first = (int(image.width * factor), int(image.height * factor))
        out = upscale.resize(image, first, info.resample or "lanczos")
        out = upscale.resize(out, target, "lanczos")
    else:
        out = run_model(image, info, target)
    if opts.resize_mode == 1 and opts.upscaling_crop:
        canvas = Image.new("RGB", (opts.upscaling_resize_w, opts.upscaling_resize_h))
        canvas.paste(out, (opts.upscaling_resize_w // 2 - out.width // 2, opts.upscaling_resize_h // 2 - out.height // 2))
        out = canvas
        notes["Postprocess crop to"] = f"{out.width}x{out.height}"
    return out


def find(name: str, esrgan_dirs: Sequence[Path], field: str) -> UpscalerInfo | None:
    if name in ("", NONE):
        return None
    info = upscale.find_upscaler(name, list(esrgan_dirs))
    if info.kind is Kind.LATENT:
        raise ExtrasInvalid(field=field, detail=f"{name!r} upscales latents, which Extras has none of",
                            detail_zh=f"「{name}」放大的是潜空间，后期处理没有潜空间")  # fmt: skip
    return info


def postprocess(image: Image.Image, opts: ExtrasOptions, esrgan_dirs: Sequence[Path], run_model: Upscale
                ) -> tuple[Image.Image, dict[str, Any]]:  # fmt: skip
    """One image through A1111's Extras upscale step: the result and its info items (in A1111's order)."""
    opts.check()
    first = find(opts.upscaler_1, esrgan_dirs, "upscaler_1")
    second = find(opts.upscaler_2, esrgan_dirs, "upscaler_2")
    image = image.convert("RGB")
    notes: dict[str, Any] = {}
    if first is None:
        return image, notes
    out = _one(image, first, opts, notes, run_model)
    notes["Postprocess upscaler"] = first.name
    if second is not None and opts.extras_upscaler_2_visibility > 0:
        other = _one(image, second, opts, notes, run_model)
        if other.mode != out.mode:
            other = other.convert(out.mode)
        out = Image.blend(out, other, opts.extras_upscaler_2_visibility)
        notes["Postprocess upscaler 2"] = second.name
    return out, notes


def _quote(value: Any) -> str:
    """A1111's infotext quoting: a value with a comma, colon or quote is written as a JSON string."""
    import json

    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:"') else text


def infotext(notes: dict[str, Any]) -> str:
    return ", ".join(k if k == v else f"{k}: {_quote(v)}" for k, v in notes.items() if v is not None)


def html_info(text: str) -> str:
    """A1111's ``plaintext_to_html``: each line escaped, joined by ``<br>``, in one paragraph."""
    return "<p>" + "<br>\n".join(html.escape(line) for line in text.split("\n")) + "</p>"


def png_texts(source: Image.Image, text: str, *, saved: bool) -> dict[str, str]:
    """The PNG text chunks of an Extras result: the source's own (its ``parameters``) and ``postprocessing``.

    A saved file also gets the ``extras`` section, as A1111's ``save_image`` writes it; an API answer does not.
    """
    kept = {k: v for k, v in source.info.items() if isinstance(k, str) and isinstance(v, str)}
    return {**kept, "postprocessing": text, **({"extras": text} if saved and text else {})}


def encode_png(image: Image.Image, texts: dict[str, str]) -> bytes:
    """``image`` as PNG bytes with these text chunks."""
    import io

    from runtime.pnginfo import text_chunks

    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=text_chunks(texts))
    return buf.getvalue()
