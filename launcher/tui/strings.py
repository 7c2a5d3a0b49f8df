"""The TUI's words in Chinese and English (the terms 绘世启动器 and A1111's zh_CN use)."""

from __future__ import annotations

from bootstrap.i18n import Text

PAGES: tuple[tuple[str, Text], ...] = (
    ("home", Text("一键启动", "Start")),
    ("advanced", Text("高级选项", "Advanced")),
    ("trouble", Text("疑难解答", "Troubleshoot")),
    ("models", Text("模型管理", "Models")),
    ("network", Text("网络/镜像", "Network")),
    ("environment", Text("环境", "Environment")),
    ("console", Text("控制台", "Console")),
)

# The mirror channels by their plain names (网络/镜像 page, the 镜像 card).
CHANNEL_TITLES: dict[str, Text] = {
    "pypi": Text("Python 包", "PyPI"),
    "torch": Text("PyTorch 轮子", "PyTorch wheels"),
    "huggingface": Text("模型下载 (HF)", "Models (HF)"),
    "python": Text("Python 安装包", "Python builds"),
    "github": Text("GitHub 加速", "GitHub proxy"),
    "civitai": Text("Civitai 模型站", "Civitai"),
    "modelscope": Text("魔搭 ModelScope", "ModelScope"),
}


def no_working_mirror(channel: str) -> Text:
    """What a channel whose every mirror failed says under its choice on the 网络 page, with the fix."""
    return Text("无可用镜像（所有镜像都失败了）：重新测速、换一个镜像，或填代理/自己的网址"
                + ("或文件夹" if channel in ("pypi", "torch") else ""),
                "no working mirror (every mirror failed): press Test again, pick another mirror, or set a proxy / "
                "your own URL" + (" or folder" if channel in ("pypi", "torch") else ""))  # fmt: skip


# The 镜像 card marks a channel with no working mirror "pypi✗" and explains the mark once.
NO_WORKING_MIRROR_MARK = Text("✗ = 无可用镜像，见「网络/镜像」页", "✗ = no working mirror: see Network")


T: dict[str, Text] = {
    "title": Text("一键 Yijian", "Yijian"),
    "subtitle": Text("Stable Diffusion 一键启动器", "Stable Diffusion launcher"),
    "quit": Text("退出", "Quit"),
    "language": Text("English", "中文"),
    "start": Text("一键启动", "Start"),
    "stop": Text("停止", "Stop"),
    "restart": Text("重启", "Restart"),
    "open_browser": Text("打开浏览器", "Open browser"),
    "checking": Text("检测中……", "Checking…"),
    "gpu": Text("显卡", "GPU"),
    "driver": Text("驱动", "Driver"),
    "vram": Text("显存", "VRAM"),
    "python": Text("Python", "Python"),
    "torch": Text("torch", "torch"),
    "xformers": Text("xformers", "xformers"),
    "pack": Text("环境包", "Pack"),
    "env_state": Text("生成环境", "Environment"),
    "mirrors": Text("镜像", "Mirrors"),
    "model_count": Text("模型", "Models"),
    "last_error": Text("上次错误", "Last error"),
    "none": Text("无", "none"),
    "no_gpu": Text("未检测到 NVIDIA 显卡（将使用 CPU，很慢）", "No NVIDIA GPU found (the CPU will be used; slow)"),
    "not_built": Text("未构建（点 一键启动 自动构建）", "not built (Start builds it)"),
    "ready": Text("正常", "ok"),
    "running": Text("运行中", "running"),
    "stopped": Text("已停止", "stopped"),
    "starting": Text("启动中（端口还没有应答）", "starting (the port does not answer yet)"),
    "state_running": Text("进行中", "running"),
    "state_done": Text("完成", "done"),
    "state_skipped": Text("跳过", "skipped"),
    "state_failed": Text("失败", "failed"),
    "state_waiting": Text("等待", "waiting"),
    "fix": Text("修复", "Fix"),
    "diagnosis": Text("诊断", "Diagnosis"),
    "console_empty": Text("生成界面尚未启动。在「一键启动」页点 一键启动。", "The generation UI is not running. Press Start on the Start page."),
}  # fmt: skip


def t(key: str, lang: str) -> str:
    return T[key].text(lang)
