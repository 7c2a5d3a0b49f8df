"""ControlNet preprocessors ("modules") by the extension's names, with its defaults and sliders.

Each turns the unit's image into the map the ControlNet model was trained on.  The ones here need no
weights (the extension's "model-free" preprocessors); they follow the extension's processing exactly:
the image made 3-channel (:func:`hwc3`), resized so its short side is the processor resolution and
padded to a multiple of 64 by repeating the edge (:func:`resize_with_pad`), processed, and the padding cut
off again.  Preprocessors that need networks (depth, pose, line art, soft edge, segmentation, IP-Adapter
encoders) are not in this list until their weights can be fetched and run: a unit naming one gets a clear
error, never an unprocessed image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bootstrap.errors import ExitCode, YijianError

Array = np.ndarray


class PreprocessorUnknown(YijianError):
    code = "CONTROLNET_MODULE_UNKNOWN"
    exit_code = ExitCode.USAGE
    zh = "没有名为「{name}」的 ControlNet 预处理器。可用：{valid}"
    en = "There is no ControlNet preprocessor {name!r} here. Available: {valid}"
    hint_zh = "预处理器名称与 sd-webui-controlnet 扩展相同（如 canny）。"
    hint_en = "Preprocessor names are the sd-webui-controlnet extension's (e.g. canny)."


@dataclass(frozen=True)
class Slider:
    name: str
    value: float
    minimum: float
    maximum: float
    step: float = 1


@dataclass(frozen=True)
class Preprocessor:
    name: str
    run: Callable[[Array, int, float, float], Array]
    sliders: tuple[Slider | None, ...]  # processor_res, threshold_a, threshold_b (None: not used)
    model_free: bool = True

    def defaults(self, res: int, a: float, b: float) -> tuple[int, float, float]:
        """The unit's values, with the extension's default where the unit sent -1 (unset)."""
        given = (res, a, b)
        out = [float(g) if g >= 0 or s is None else s.value for g, s in zip(given, self._padded(), strict=True)]
        return int(out[0]) if out[0] >= 0 else 512, out[1], out[2]

    def _padded(self) -> tuple[Slider | None, ...]:
        return (*self.sliders, None, None, None)[:3]

    def __call__(self, image: Array, res: int = -1, a: float = -1, b: float = -1) -> Array:
        r, ta, tb = self.defaults(res, a, b)
        return hwc3(self.run(hwc3(image), r, ta, tb))


def hwc3(x: Array) -> Array:
    """An image as H×W×3 uint8; grey repeated, alpha composed over white (the extension's HWC3)."""
    if x.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image, not {x.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]
    channels = x.shape[2]
    if channels == 3:
        return x
    if channels == 1:
        return np.concatenate([x, x, x], axis=2)
    if channels == 4:
        color = x[:, :, :3].astype(np.float32)
        alpha = x[:, :, 3:4].astype(np.float32) / 255.0
        composed: Array = (color * alpha + 255.0 * (1.0 - alpha)).clip(0, 255).astype(np.uint8)
        return composed
    raise ValueError(f"an image with {channels} channels")


def _pad64(x: int) -> int:
    return int(np.ceil(float(x) / 64.0) * 64 - x)


def resize_with_pad(image: Array, resolution: int) -> tuple[Array, Callable[[Array], Array]]:
    """Short side to ``resolution`` (cubic up, area down), edge-padded to multiples of 64; and the un-padder."""
    import cv2

    h_raw, w_raw = image.shape[:2]
    k = float(resolution) / float(min(h_raw, w_raw))
    h, w = int(np.round(h_raw * k)), int(np.round(w_raw * k))
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
    padded = np.pad(resized, [[0, _pad64(h)], [0, _pad64(w)], [0, 0]], mode="edge")
    return np.ascontiguousarray(padded), lambda out: np.ascontiguousarray(out[:h, :w])


def _none(image: Array, res: int, a: float, b: float) -> Array:
    return image


def _invert(image: Array, res: int, a: float, b: float) -> Array:
    return 255 - image


def _canny(image: Array, res: int, a: float, b: float) -> Array:
    import cv2

    padded, unpad = resize_with_pad(image, res)
    return unpad(cv2.Canny(padded, a, b))


def _tile_resample(image: Array, res: int, a: float, b: float) -> Array:
    import cv2

    if a < 1.1:
        return image
    h, w = int(image.shape[0] / a), int(image.shape[1] / a)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def _lineart_standard(image: Array, res: int, a: float, b: float) -> Array:
    import cv2

    padded, unpad = resize_with_pad(image, res)
    x = padded.astype(np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), 6.0)
    intensity = np.min(blurred - x, axis=2).clip(0, 255)
    intensity /= max(16, float(np.median(intensity[intensity > 8])) if np.any(intensity > 8) else 16)
    intensity *= 127
    return unpad(intensity.clip(0, 255).astype(np.uint8))


RES = Slider("Preprocessor Resolution", 512, 64, 2048)
PREPROCESSORS: dict[str, Preprocessor] = {
    p.name: p
    for p in (
        Preprocessor("none", _none, ()),
        Preprocessor("invert", _invert, (RES,)),
        Preprocessor("canny", _canny, (RES, Slider("Canny Low Threshold", 100, 1, 255),
                                       Slider("Canny High Threshold", 200, 1, 255))),  # fmt: skip
        Preprocessor("tile_resample", _tile_resample, (None, Slider("Down Sampling Rate", 1.0, 1.0, 8.0, 0.01))),
        Preprocessor("lineart_standard", _lineart_standard, (RES,)),
    )
}
# The extension's display names and older spellings of the same modules.
ALIASES = {
    "invert (from white bg & black line)": "invert",
    "lineart_standard (from white bg & black line)": "lineart_standard",
    "tile": "tile_resample",
}


def find(name: str) -> Preprocessor:
    key = ALIASES.get(name, name).strip()
    if key.casefold() in ("", "none", "null"):
        return PREPROCESSORS["none"]
    for known, pre in PREPROCESSORS.items():
        if known.casefold() == key.casefold():
            return pre
    raise PreprocessorUnknown(name=name, valid=", ".join(PREPROCESSORS))


def module_detail() -> dict[str, dict[str, object]]:
    """``/controlnet/module_list``'s ``module_detail``: each module's sliders as the extension describes them."""
    detail: dict[str, dict[str, object]] = {}
    for name, pre in PREPROCESSORS.items():
        sliders = [
            {"name": s.name, "value": s.value, "min": s.minimum, "max": s.maximum, "step": s.step}
            for s in pre.sliders if s is not None
        ]  # fmt: skip
        detail[name] = {"model_free": pre.model_free, "sliders": sliders}
    return detail
