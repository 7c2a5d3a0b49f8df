"""A ControlNet unit as the sd-webui-controlnet extension defines it: fields, accepted spellings, infotext.

Clients and tutorials send units as ``alwayson_scripts: {"controlnet": {"args": [unit, …]}}`` with the
extension's field names and values; older clients use its earlier keys (``input_image``, ``guidance``,
``lowvram``, ``guessmode``) and integer enums.  :func:`unit_from_api` accepts every form the extension's
``to_processing_unit`` accepts, and :func:`infotext` writes the unit into the parameters text the way the
extension does (``ControlNet 0: "Module: canny, Model: …, Weight: 1, …"``), which :func:`parse_infotext`
reads back (PNG Info, "send to").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from bootstrap.errors import ExitCode, YijianError

CONTROL_MODES = ("Balanced", "My prompt is more important", "ControlNet is more important")
RESIZE_MODES = ("Just Resize", "Crop and Resize", "Resize and Fill")
HR_OPTIONS = ("Both", "Low res only", "High res only")
_RESIZE_ALIASES = {
    "Inner Fit (Scale to Fit)": "Crop and Resize",
    "Outer Fit (Shrink to Fit)": "Resize and Fill",
    "Scale to Fit (Inner Fit)": "Crop and Resize",
    "Envelope (Outer Fit)": "Resize and Fill",
    "Just Resize (Latent upscale)": "Just Resize",
}
_OLD_KEYS = {"guidance": "guidance_end", "lowvram": "low_vram", "input_image": "image"}
# Fields the extension leaves out of the infotext (the image, the switch, API-only extras).
_NOT_IN_INFOTEXT = ("image", "mask", "enabled", "advanced_weighting", "inpaint_crop_input_image")
MAX_UNITS = 3  # the extension's default "control_net_unit_count"


class ControlNetUnitInvalid(YijianError):
    code = "CONTROLNET_UNIT_INVALID"
    exit_code = ExitCode.USAGE
    zh = "ControlNet 单元 {index} 的 {field} 无效：{detail_zh}"
    en = "ControlNet unit {index}: invalid {field}: {detail}"
    hint_zh = "字段名和取值与 sd-webui-controlnet 扩展相同。"
    hint_en = "Field names and values are the sd-webui-controlnet extension's."


@dataclass(frozen=True)
class Unit:
    """One unit, with the extension's field names and defaults."""

    enabled: bool = True
    module: str = "none"
    model: str = "None"
    weight: float = 1.0
    image: Any = None  # base64 text, a PIL image, or None ("use the img2img image")
    mask: Any = None
    resize_mode: str = "Crop and Resize"
    low_vram: bool = False
    processor_res: int = -1
    threshold_a: float = -1
    threshold_b: float = -1
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    pixel_perfect: bool = False
    control_mode: str = "Balanced"
    inpaint_crop_input_image: bool = True
    hr_option: str = "Both"
    save_detected_map: bool = True
    advanced_weighting: list[float] | None = field(default=None)

    @property
    def active(self) -> bool:
        return self.enabled and self.module != "" and (self.model not in ("", "None") or self.module != "none")


def _enum(value: Any, names: tuple[str, ...], aliases: dict[str, str], index: int, name: str) -> str:
    if isinstance(value, bool):
        raise _bad(index, name, value, names)
    if isinstance(value, int):
        if value == 3 and names is RESIZE_MODES:  # "Just Resize (Latent upscale)"
            return names[0]
        if 0 <= value < len(names):
            return names[value]
        raise _bad(index, name, value, names)
    text = aliases.get(str(value), str(value))
    for known in names:
        if text.casefold() == known.casefold():
            return known
    raise _bad(index, name, value, names)


def _bad(index: int, name: str, value: Any, names: tuple[str, ...]) -> ControlNetUnitInvalid:
    valid = ", ".join(names)
    return ControlNetUnitInvalid(index=index, field=name, detail=f"{value!r}; valid: {valid}",
                                 detail_zh=f"{value!r}；可选：{valid}")  # fmt: skip


def unit_from_api(raw: Any, index: int = 0) -> Unit:
    """A unit from an API argument (a dict in any form the extension accepts)."""
    if not isinstance(raw, dict):
        raise ControlNetUnitInvalid(index=index, field="args", detail=f"a unit must be an object, not {raw!r}"[:200],
                                    detail_zh="单元必须是一个对象（JSON object）")  # fmt: skip
    data = {_OLD_KEYS.get(k, k): v for k, v in raw.items()}
    image = data.get("image")
    if isinstance(image, dict):  # {"image": …, "mask": …}, the extension's own form
        data.setdefault("mask", image.get("mask"))
        data["image"] = image.get("image")
    if "mask_image" in data:
        data["mask"] = data.pop("mask_image")
    known = {f.name for f in fields(Unit)}
    unit = Unit(**{k: v for k, v in data.items() if k in known})
    try:
        unit = replace(
            unit,
            weight=float(unit.weight), processor_res=int(unit.processor_res), threshold_a=float(unit.threshold_a),
            threshold_b=float(unit.threshold_b), guidance_start=float(unit.guidance_start),
            guidance_end=float(unit.guidance_end), enabled=bool(unit.enabled), pixel_perfect=bool(unit.pixel_perfect),
        )  # fmt: skip
    except (TypeError, ValueError) as e:
        raise ControlNetUnitInvalid(index=index, field="a number", detail=str(e), detail_zh=str(e)) from e
    unit = replace(
        unit,
        resize_mode=_enum(unit.resize_mode, RESIZE_MODES, _RESIZE_ALIASES, index, "resize_mode"),
        control_mode=_enum(unit.control_mode, CONTROL_MODES, {}, index, "control_mode"),
        hr_option=_enum(unit.hr_option, HR_OPTIONS, {}, index, "hr_option"),
    )
    if not 0.0 <= unit.guidance_start <= unit.guidance_end <= 1.0:
        raise ControlNetUnitInvalid(index=index, field="guidance_start/guidance_end",
                                    detail="need 0 <= guidance_start <= guidance_end <= 1",
                                    detail_zh="需要 0 ≤ guidance_start ≤ guidance_end ≤ 1")  # fmt: skip
    if not 0.0 <= unit.weight <= 2.0:
        raise ControlNetUnitInvalid(index=index, field="weight", detail="must be from 0 to 2",
                                    detail_zh="应在 0 到 2 之间")  # fmt: skip
    return unit


def units_from_script_args(script: Any) -> list[Unit]:
    """``alwayson_scripts["controlnet"]`` (``{"args": [...]}``) → its units, in order."""
    args = script.get("args", []) if isinstance(script, dict) else script
    if not isinstance(args, list):
        raise ControlNetUnitInvalid(index=0, field="args", detail="must be a list of units", detail_zh="应为单元列表")
    return [unit_from_api(raw, i) for i, raw in enumerate(args) if raw is not None]


def _display(name: str) -> str:
    return " ".join(word.capitalize() for word in name.split("_"))


def _value_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def infotext(unit: Unit) -> str:
    """The unit's value in the parameters text, without the quotes A1111 adds around it."""
    parts = []
    for f in fields(Unit):
        value = getattr(unit, f.name)
        if f.name in _NOT_IN_INFOTEXT or value == -1:
            continue
        parts.append(f"{_display(f.name)}: {_value_text(value)}")
    return ", ".join(parts)


def infotext_items(units: list[Unit]) -> dict[str, str]:
    """``{"ControlNet 0": "Module: …", …}`` for the enabled units (numbered by their place among all units)."""
    return {f"ControlNet {i}": infotext(u) for i, u in enumerate(units) if u.active}


def parse_infotext(text: str) -> Unit:
    """A unit back from its infotext value (quoted or not)."""
    if text.startswith('"'):
        text = json.loads(text)
    values: dict[str, Any] = {}
    for item in text.split(","):
        key, _, raw = item.strip().partition(": ")
        name = "_".join(word.lower() for word in key.split(" "))
        values[name] = _parse_value(raw)
    return unit_from_api(values)


def _parse_value(raw: str) -> Any:
    if raw in ("True", "False"):
        return raw == "True"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw
