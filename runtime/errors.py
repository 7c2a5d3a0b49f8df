"""The runtime's branch of Yijian's error tree (root in :mod:`bootstrap.errors`).

Each error has a stable code, a zh/en message and a hint.  The API turns
them into JSON answers, the UI into a message box, and ``python -m runtime``
into one line on stderr and the exit code; nothing else catches them.
"""

from __future__ import annotations

from bootstrap.errors import ExitCode, YijianError


class RuntimeUsageError(YijianError):
    code = "RUNTIME_USAGE"
    exit_code = ExitCode.USAGE
    zh = "启动参数有误：{detail}"
    en = "Bad runtime option: {detail}"
    hint_zh = "运行 python -m runtime --help 查看可用参数。"
    hint_en = "Run python -m runtime --help for the options."


class ListenWithoutAuth(YijianError):
    code = "LISTEN_WITHOUT_AUTH"
    exit_code = ExitCode.USAGE
    zh = "--listen 会让局域网里的任何人都能使用这台电脑生成图片，必须同时设置 --auth 用户名:密码。"
    en = "--listen lets anyone on the network use this computer; it needs --auth user:password as well."
    hint_zh = "加上 --auth 用户名:密码；确实要无密码开放时，加 --insecure-no-auth（不推荐）。"
    hint_en = (
        "Add --auth user:password; to open it without a password anyway, add --insecure-no-auth (not recommended)."
    )


class InvalidRequest(YijianError):
    """A generation request that cannot run as given; ``field`` names the input.

    ``detail`` is the English reason and ``detail_zh`` the Chinese one.
    """

    def __init__(self, detail: str = "", /, *, field: str, detail_zh: str = "") -> None:
        super().__init__(detail, field=field, detail_zh=detail_zh or detail)

    code = "INVALID_REQUEST"
    exit_code = ExitCode.USAGE
    zh = "参数 {field} 无效：{detail_zh}"
    en = "Invalid {field}: {detail}"
    hint_zh = "改正这个参数后再试。"
    hint_en = "Correct it and try again."


class ModelNotFound(YijianError):
    code = "MODEL_NOT_FOUND"
    exit_code = ExitCode.RUNTIME
    zh = "找不到模型：{detail}"
    en = "Model not found: {detail}"
    hint_zh = "把模型放进 models/Stable-diffusion，或用 ./start.sh models download 下载；在“模型”页点刷新。"
    hint_en = "Put the model in models/Stable-diffusion or run ./start.sh models download; then refresh the Models tab."


class ModelOutsideLibrary(ModelNotFound):
    """A path that is neither in the model library nor on the runtime's own command line."""

    code = "MODEL_NOT_IN_LIBRARY"
    zh = "只能加载模型库里的模型，{detail} 不在其中。"
    en = "Only models in the model library can be loaded; {detail} is not one of them."
    hint_zh = "把模型文件放进 models/Stable-diffusion（或已配置的其他模型文件夹），刷新后按文件名选择。"
    hint_en = (
        "Put the file in models/Stable-diffusion (or another configured models folder), refresh, and pick it by name."
    )


class HostNotAllowed(YijianError):
    """A request whose Host header is not this computer's loopback name (DNS rebinding)."""

    code = "HOST_NOT_ALLOWED"
    exit_code = ExitCode.USAGE
    zh = "拒绝了 Host 为 {detail} 的请求：本服务只在本机（127.0.0.1）上提供。"
    en = "Refused a request for Host {detail}: this service is only for this computer (127.0.0.1)."
    hint_zh = "请用 http://127.0.0.1:端口 或 http://localhost:端口 打开；要让局域网访问，请用 --listen 并设置登录密码。"
    hint_en = "Open it as http://127.0.0.1:PORT or http://localhost:PORT; for the LAN, start with --listen and a login."


class NoModel(YijianError):
    code = "NO_MODEL"
    exit_code = ExitCode.RUNTIME
    zh = "还没有可用的模型。"
    en = "There is no model to generate with yet."
    hint_zh = (
        "把 .safetensors 模型文件放进 models/Stable-diffusion 文件夹，在“模型”页点刷新；"
        "或运行 ./start.sh models download sd15 下载一个；也可以用 --demo 试运行（只会生成噪点）。"
    )
    hint_en = (
        "Put a .safetensors model file in the models/Stable-diffusion folder and refresh the Models tab, "
        "or run ./start.sh models download sd15; or try --demo (it only draws noise)."
    )


class PickleNotAllowed(YijianError):
    code = "UNSAFE_PICKLE_CHECKPOINT"
    exit_code = ExitCode.RUNTIME
    zh = "{detail} 是 pickle 格式（.ckpt/.pt），加载时可能运行其中的代码，默认不加载。"
    en = "{detail} is a pickle (.ckpt/.pt) and can run code when loaded, so it is not loaded by default."
    hint_zh = (
        "请换用该模型的 .safetensors 版本；确信来源可靠时，用 ./start.sh launch -- --allow-ckpt 启动"
        "（Windows：start.bat launch -- --allow-ckpt；仍以 weights_only 安全方式读取）。"
    )
    hint_en = (
        "Use the model's .safetensors version; if you trust it, start with ./start.sh launch -- --allow-ckpt "
        "(Windows: start.bat launch -- --allow-ckpt; still read with weights_only)."
    )


class ModelLoadFailed(YijianError):
    code = "MODEL_LOAD_FAILED"
    exit_code = ExitCode.RUNTIME
    zh = "模型 {model} 加载失败：{detail}"
    en = "Could not load the model {model}: {detail}"
    hint_zh = "运行 ./start.sh models verify 检查文件是否完整；详细信息在 logs/runtime.log。"
    hint_en = "Run ./start.sh models verify to check the file; the detail is in logs/runtime.log."


class ArchitectureConfigMissing(YijianError):
    code = "ARCH_CONFIG_MISSING"
    exit_code = ExitCode.RUNTIME
    zh = "缺少 {arch} 架构的配置文件夹（{detail}），无法离线加载单文件模型。"
    en = "The {arch} architecture config folder ({detail}) is missing, so single-file models cannot load offline."
    hint_zh = "这些小文件由软件自带的 models/configs 生成到 cache/configs，无需联网：请确认 cache 文件夹可写、models/configs 完整（重新解压整合包可恢复）。"
    hint_en = (
        "These small files are written from models/configs (shipped with Yijian) into cache/configs, with no "
        "network: check that cache/ is writable and models/configs is complete (unpacking the bundle again restores it)."
    )


class OutOfMemory(YijianError):
    code = "CUDA_OOM"
    exit_code = ExitCode.RUNTIME
    zh = "显存不足（{detail}）。"
    en = "Out of GPU memory ({detail})."
    hint_zh = "{advice_zh}"
    hint_en = "{advice_en}"


class Interrupted(YijianError):
    code = "INTERRUPTED"
    exit_code = ExitCode.INTERRUPTED
    zh = "已中断。"
    en = "Interrupted."


class FeatureNotAvailable(YijianError):
    """An A1111 route or field whose feature Yijian does not have yet (the API answers 501)."""

    code = "FEATURE_NOT_AVAILABLE"
    exit_code = ExitCode.RUNTIME
    zh = "一键还没有这个功能：{feature_zh}。"
    en = "Yijian does not have this feature yet: {feature}."
    hint_zh = "这个 A1111 功能会在以后的版本中加入；在此之前请不要在请求里使用它。"
    hint_en = "This A1111 feature comes in a later version; until then, leave it out of the request."


class ScriptNotFound(YijianError):
    """``script_name`` or an ``alwayson_scripts`` key naming a script this runtime does not have (A1111: 422)."""

    code = "SCRIPT_NOT_FOUND"
    exit_code = ExitCode.USAGE
    zh = "没有名为 {name} 的脚本{what_zh}。"
    en = "{what_en} {name} not found."
    hint_zh = "GET /sdapi/v1/scripts 列出可用的脚本；ControlNet 等扩展在一键中还没有。"
    hint_en = "GET /sdapi/v1/scripts lists the scripts there are; extensions such as ControlNet are not in Yijian yet."


class OptionNotSettable(YijianError):
    """A ``/options`` or ``override_settings`` key that cannot take the value sent (read-only here, or unknown)."""

    code = "OPTION_NOT_SETTABLE"
    exit_code = ExitCode.USAGE
    zh = "设置项 {key} 不能改为 {value}：{reason_zh}"
    en = "The option {key} cannot be set to {value}: {reason_en}"
    hint_zh = "GET /sdapi/v1/options 显示每个设置项的当前值；只读的设置项请不要发送或发送相同的值。"
    hint_en = "GET /sdapi/v1/options shows each option's value; leave read-only options out or send the same value."
