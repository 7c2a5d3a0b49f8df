"""A1111's settings (``/sdapi/v1/options``): every key A1111 1.10 has, persisted in the bundle.

The keys and A1111's defaults are data (``runtime/data/a1111_options.toml``).
Each key is one of three kinds:

* **applied**: it changes what the runtime does (the model, the VAE, clip
  skip, the Emphasis mode, the old prompt-editing timelines, saving images and
  grids, returning the grid, live previews);
* **read-only**: the runtime does one fixed thing where A1111 has a choice
  (PNG only, outputs in the bundle's ``outputs/`` folder, no face restoration,
  no ENSD …): the key answers its fixed value, and setting another value is
  refused with the reason (422), never dropped in silence;
* **kept**: look-and-feel of A1111's own web page, training, extensions …:
  stored and answered as sent, with no effect here (logged once per change).

A key A1111 does not have is refused (A1111 itself fails with a 500 there).
Changed values are written to ``<bundle>/webui-settings.json`` (atomically),
so they survive a restart; only differences from the defaults are kept.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bootstrap import tomlread
from bootstrap.atomic import write_atomic
from runtime.errors import OptionNotSettable

log = logging.getLogger("yijian.runtime")

DATA = Path(__file__).resolve().parent / "data" / "a1111_options.toml"
FILE_NAME = "webui-settings.json"

# Keys the runtime applies (the engine and the API read them through WebuiSettings.get or the engine's state).
APPLIED = frozenset({
    "sd_model_checkpoint", "sd_vae", "CLIP_stop_at_last_layers", "emphasis", "use_old_scheduling",
    "samples_save", "grid_save", "return_grid", "grid_only_if_multiple", "n_rows", "grid_prevent_empty_spots",
    "grid_background_color", "live_previews_enable", "show_progress_every_n_steps", "show_progress_type",
})  # fmt: skip

_OUTPUTS = ("outputs stay in the bundle's outputs/ folder (A1111 refuses these keys from the API too)",
            "输出固定保存在整合包的 outputs/ 文件夹（A1111 同样不允许通过 API 修改）")  # fmt: skip
_PNG = ("images are saved and answered as PNG", "图片只保存和返回 PNG 格式")
_NO_FACES = ("face restoration is not in Yijian yet", "一键还没有面部修复功能")
# Read-only keys: (English reason, Chinese reason).  Their value is the default, which is what the runtime does.
READ_ONLY: dict[str, tuple[str, str]] = {
    **{k: _OUTPUTS for k in ("outdir_samples", "outdir_txt2img_samples", "outdir_img2img_samples",
                             "outdir_extras_samples", "outdir_grids", "outdir_txt2img_grids", "outdir_img2img_grids",
                             "outdir_save", "outdir_init_images", "samples_filename_pattern",
                             "directories_filename_pattern", "save_to_dirs", "grid_save_to_dirs", "temp_dir")},
    "samples_format": _PNG, "grid_format": _PNG, "live_previews_image_format": _PNG,
    "face_restoration": _NO_FACES, "save_images_before_face_restoration": _NO_FACES,
    "enable_pnginfo": ("every image carries its parameters text", "每张图片都写入生成参数"),
    "save_txt": ("the parameters are in the PNG, not in a .txt beside it", "生成参数写在 PNG 里，不另存 .txt"),
    "save_images_before_highres_fix": ("the image before the hires pass is not saved", "不保存高清修复前的图片"),
    "save_incomplete_images": ("interrupted images are answered, not saved", "中断的图片只返回，不保存"),
    "eta_noise_seed_delta": ("the noise seed delta (ENSD) is not implemented; it is 0",
                             "未实现噪声种子偏移（ENSD），固定为 0"),
    "randn_source": ("noise comes from the device's generator (A1111's GPU source; the CPU's without a GPU)",
                     "噪声由设备的随机数生成器产生（即 A1111 的 GPU 来源；没有显卡时用 CPU）"),
    "sd_checkpoints_limit": ("one model is loaded at a time", "同一时间只加载一个模型"),
    "cross_attention_optimization": ("attention is chosen by --attention / --xformers at start",
                                     "注意力实现由启动参数 --attention / --xformers 决定"),
    "api_enable_requests": ("images are never fetched from URLs", "不会从网址下载图片"),
    "api_forbid_local_requests": ("images are never fetched from URLs", "不会从网址下载图片"),
    "api_useragent": ("images are never fetched from URLs", "不会从网址下载图片"),
}  # fmt: skip


def _load_data(path: Path = DATA) -> dict[str, Any]:
    data = tomlread.load(path)
    defaults: dict[str, Any] = {k: None for k in data.get("none_defaults", [])}
    defaults.update(data["defaults"])
    return defaults


DEFAULTS: dict[str, Any] = _load_data()


def _type_error(key: str, value: Any) -> tuple[str, str] | None:
    """Why ``value`` does not fit the key (its default's type, or the choices of an applied key); None if it does."""
    default = DEFAULTS[key]
    if key == "emphasis":
        from runtime.prompts.attention import EMPHASIS_MODES

        if value not in EMPHASIS_MODES:
            modes = ", ".join(EMPHASIS_MODES)
            return f"one of {modes}", f"应为 {modes} 之一"
        return None
    if default is None or value is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        want = ("true or false", "应为 true 或 false")
    elif isinstance(default, int | float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(default, int) and key in APPLIED:
            ok = ok and float(value).is_integer()
        want = ("a number", "应为数字")
    elif isinstance(default, str):
        ok, want = isinstance(value, str), ("a string", "应为字符串")
    else:
        ok, want = isinstance(value, list), ("a list", "应为列表")
    return None if ok else want


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


class WebuiSettings:
    """The A1111 settings of one runtime: defaults, the bundle's saved changes, thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:  # a damaged file: the defaults, and the file is kept for the user
                log.warning("%s could not be read (%s); A1111 settings start from their defaults", path, e)
                saved = {}
            self._values = {k: v for k, v in saved.items() if k in DEFAULTS and k not in READ_ONLY}

    @classmethod
    def for_bundle(cls, root: Path) -> WebuiSettings:
        return cls(root / FILE_NAME)

    def get(self, key: str) -> Any:
        with self._lock:
            return self._values.get(key, DEFAULTS[key])

    def snapshot(self) -> dict[str, Any]:
        """Every key with its value (live keys such as the model are filled in by the caller)."""
        with self._lock:
            return {**DEFAULTS, **self._values}

    @staticmethod
    def check(changes: Mapping[str, Any]) -> None:
        """Refuse unknown keys and other values for read-only keys (422 names the key and the reason)."""
        for key, value in changes.items():
            if key not in DEFAULTS:
                raise OptionNotSettable(key=key, value=_show(value), reason_en="A1111 1.10 has no such option",
                                        reason_zh="A1111 1.10 没有这个设置项")  # fmt: skip
            if key in READ_ONLY and not _same(value, DEFAULTS[key]):
                en, zh = READ_ONLY[key]
                raise OptionNotSettable(key=key, value=_show(value), reason_en=f"read-only here: {en}",
                                        reason_zh=f"此处为只读：{zh}")  # fmt: skip
            wrong = _type_error(key, value)
            if wrong is not None:
                raise OptionNotSettable(key=key, value=_show(value), reason_en=f"it must be {wrong[0]}",
                                        reason_zh=wrong[1])  # fmt: skip

    def update(self, changes: Mapping[str, Any]) -> None:
        """Store ``changes`` (already checked) and write the file; the caller applies the applied keys."""
        kept = [k for k in changes if k not in APPLIED and k not in READ_ONLY]
        with self._lock:
            for key, value in changes.items():
                if key in READ_ONLY or key == "sd_model_checkpoint":
                    continue
                if _same(value, DEFAULTS[key]):
                    self._values.pop(key, None)
                else:
                    self._values[key] = value
            data = dict(sorted(self._values.items()))
        if kept:
            log.info("A1111 options kept with no effect in Yijian: %s", ", ".join(sorted(kept)))
        if self.path is not None:
            write_atomic(self.path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))
