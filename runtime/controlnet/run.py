"""From a request's units to running ControlNets: preprocess, fit the map to the image size, load each model once.

:func:`prepare_units` turns the units of one generation into :class:`~runtime.controlnet.hook.ActiveUnit`\\ s
plus the detected maps (returned to API clients after the images, as the extension does, unless a unit
says ``save_detected_map: false``).  The map is fitted to the generation's size by the unit's resize mode:
"Just Resize" stretches, "Crop and Resize" covers and cuts the overflow evenly, "Resize and Fill" fits
inside and fills the rest with the map's median border colour.  Maps with few colours (edges, poses,
segmentation) are resized with nearest-neighbour so lines stay sharp; the extension additionally
thins binary edges after resizing, which is not done here.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runtime.controlnet import models, preprocessors
from runtime.controlnet.hook import ActiveUnit
from runtime.controlnet.units import ControlNetUnitInvalid, Unit


@dataclass
class Prepared:
    units: list[ActiveUnit]
    maps: list[Image.Image]  # the detected maps to return, in unit order
    used: list[Unit]  # the units that run, for the infotext


def decode(data: Any, index: int, field: str = "image") -> np.ndarray:
    if isinstance(data, Image.Image):
        return np.asarray(data.convert("RGBA" if "A" in data.getbands() else "RGB"))
    if not isinstance(data, str) or not data:
        raise ControlNetUnitInvalid(index=index, field=field, detail="no image", detail_zh="没有图片")
    raw = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        image = Image.open(io.BytesIO(base64.b64decode(raw)))
        return np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))
    except Exception as e:
        raise ControlNetUnitInvalid(index=index, field=field, detail=f"not a base64 image ({e})"[:200],
                                    detail_zh="不是 base64 编码的图片") from e  # fmt: skip


def pixel_perfect_resolution(image: np.ndarray, width: int, height: int, resize_mode: str) -> int:
    """The extension's "Pixel Perfect" processor resolution for this image and target size."""
    raw_h, raw_w = image.shape[:2]
    k0, k1 = height / raw_h, width / raw_w
    k = min(k0, k1) if resize_mode == "Resize and Fill" else max(k0, k1)
    return int(np.round(k * min(raw_h, raw_w)))


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    colours = len(np.unique(x.reshape(-1, x.shape[2]), axis=0))
    smaller = size[0] * size[1] < x.shape[0] * x.shape[1]
    how = cv2.INTER_NEAREST if colours <= 200 else cv2.INTER_AREA if smaller else cv2.INTER_CUBIC
    return cv2.resize(x, size, interpolation=how)


def fit(detected: np.ndarray, width: int, height: int, resize_mode: str) -> np.ndarray:
    """The map at ``width`` × ``height`` by the unit's resize mode."""
    h, w = detected.shape[:2]
    if resize_mode == "Just Resize":
        return _resize(detected, (width, height))
    k = max(width / w, height / h) if resize_mode == "Crop and Resize" else min(width / w, height / h)
    new_w, new_h = max(1, int(np.round(w * k))), max(1, int(np.round(h * k)))
    scaled = _resize(detected, (new_w, new_h))
    if resize_mode == "Crop and Resize":
        top, left = (new_h - height) // 2, (new_w - width) // 2
        return np.ascontiguousarray(scaled[top : top + height, left : left + width])
    border = np.concatenate([detected[0], detected[-1], detected[:, 0], detected[:, -1]], axis=0)
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = np.median(border, axis=0).astype(np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = scaled
    return canvas


class ModelCache:
    """The ControlNet networks in use; a model named by two units is loaded once."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._models: dict[tuple[Path, int], Any] = {}
        self._lock = threading.Lock()

    def get(self, file: models.ControlNetFile, unet: Any, architecture: str) -> Any:
        key = (file.path, id(unet))
        with self._lock:
            if key not in self._models:
                while len(self._models) >= self.keep:
                    self._models.pop(next(iter(self._models)))
                self._models[key] = models.load_controlnet(file, unet, architecture)
            return self._models[key]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


def prepare_units(units: Sequence[Unit], *, unet: Any, architecture: str, width: int, height: int,
                  folders: Sequence[Path], cache: ModelCache, fallback_image: Image.Image | None = None) -> Prepared:  # fmt: skip
    """Every active unit preprocessed, fitted and with its model loaded."""
    out = Prepared([], [], [])
    for index, unit in enumerate(units):
        if not unit.active:
            continue
        if unit.image is None and fallback_image is None:
            raise ControlNetUnitInvalid(index=index, field="image", detail="no image (and no img2img image to use)",
                                        detail_zh="没有图片（也没有可用的图生图图片）")  # fmt: skip
        source = decode(unit.image if unit.image is not None else fallback_image, index)
        pre = preprocessors.find(unit.module)
        res = unit.processor_res
        if unit.pixel_perfect:
            res = pixel_perfect_resolution(source, width, height, unit.resize_mode)
        detected = pre(source, res, unit.threshold_a, unit.threshold_b)
        fitted = fit(detected, width, height, unit.resize_mode)
        if unit.model in ("", "None"):
            raise ControlNetUnitInvalid(index=index, field="model", detail="no ControlNet model chosen",
                                        detail_zh="没有选择 ControlNet 模型")  # fmt: skip
        network = cache.get(models.find_model(unit.model, folders), unet, architecture)
        hint = np.ascontiguousarray(fitted).astype(np.float32) / 255.0
        import torch

        tensor = torch.from_numpy(hint).permute(2, 0, 1)[None]
        out.units.append(ActiveUnit(network, tensor, unit.weight, unit.guidance_start, unit.guidance_end,
                                    unit.control_mode))  # fmt: skip
        if unit.save_detected_map:
            out.maps.append(Image.fromarray(detected))
        out.used.append(unit)
    return out
