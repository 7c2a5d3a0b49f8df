"""The upscalers' errors, on Yijian's one error tree (``bootstrap.errors``)."""

from __future__ import annotations

from bootstrap.errors import ExitCode, YijianError


class UpscalerUnsupported(YijianError):
    """A file in ``models/ESRGAN`` that cannot be read, or is not a network we know."""

    code = "UPSCALER_UNSUPPORTED"
    exit_code = ExitCode.RUNTIME
    zh = "无法使用放大模型 {path}：{reason_zh}"
    en = "Cannot use the upscaler model {path}: {reason_en}"
    hint_zh = (
        "支持的是 ESRGAN 系列模型（ESRGAN、Real-ESRGAN、BSRGAN 的 RRDBNet，以及 realesr-general / animevideo 的"
        " SRVGGNetCompact），格式为 .pth、.pt 或 .safetensors。请换一个模型，或重新下载这个文件。"
    )
    hint_en = (
        "Supported are ESRGAN-family models (the RRDBNet of ESRGAN, Real-ESRGAN and BSRGAN, and the"
        " SRVGGNetCompact of realesr-general / animevideo) as .pth, .pt or .safetensors. Pick another"
        " model, or download this file again."
    )


class UpscalerNotFound(YijianError, LookupError):
    """A name that is neither a built-in upscaler nor a model in ``models/ESRGAN``."""

    code = "UPSCALER_NOT_FOUND"
    exit_code = ExitCode.RUNTIME
    zh = "找不到放大算法「{name}」。"
    en = "There is no upscaler named '{name}'."
    hint_zh = "可用的有：{available}。ESRGAN 模型请放在 {folder} 里。"
    hint_en = "Available: {available}. ESRGAN models go in {folder}."
