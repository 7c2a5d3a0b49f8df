"""The launcher's errors: branches of the one tree rooted in bootstrap.errors.

Import errors from here in launcher code; stage 0 uses the root module
directly because it cannot import the launcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootstrap.errors import (
    BundleNotWritable,
    BundlePathError,
    ExitCode,
    LauncherEnvError,
    NotBuiltYet,
    UsageError,
    YijianError,
)

__all__ = [
    "AllMirrorsFailed",
    "BundleNotWritable",
    "BundlePathError",
    "ChecksumMismatch",
    "ConfigInvalid",
    "ConfigProblem",
    "ConfigUnreadable",
    "DestinationExists",
    "DiskFull",
    "DownloadFailed",
    "DownloadInterrupted",
    "DownloadLocked",
    "ExitCode",
    "LauncherEnvError",
    "LinkNotFound",
    "MirrorChoiceInvalid",
    "MirrorUnusable",
    "ModelFileChoice",
    "NoFreePort",
    "NotBuiltYet",
    "NoPackFits",
    "OfflineMode",
    "PackFileInvalid",
    "TokenNeeded",
    "UnknownPack",
    "UnsupportedLink",
    "UsageError",
    "WrongContent",
    "YijianError",
]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in config.toml, located as precisely as we can."""

    file: str
    line: int | None
    key: str
    message_zh: str
    message_en: str

    def message(self, lang: str) -> str:
        return self.message_zh if lang == "zh" else self.message_en

    def render(self, lang: str) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message(lang)}"

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "key": self.key, "message": self.message(lang)}


class ConfigUnreadable(YijianError):
    code = "CONFIG_UNREADABLE"
    exit_code = ExitCode.CONFIG
    zh = "无法读取配置文件 {file}：{detail}"
    en = "Cannot read the config file {file}: {detail}"
    hint_zh = "修正第 {line} 行附近的 TOML 语法，或删除该文件以恢复默认设置（删除前请先备份）。"
    hint_en = "Fix the TOML syntax near line {line}, or move the file away to go back to the defaults."


class ConfigInvalid(YijianError):
    code = "CONFIG_INVALID"
    exit_code = ExitCode.CONFIG
    zh = "配置文件 {file} 有 {count} 处错误：\n{listing}"
    en = "The config file {file} has {count} problem(s):\n{listing}"
    hint_zh = "按上面的提示修改，然后运行 ./start.sh config validate 检查。"
    hint_en = "Fix them as shown, then run ./start.sh config validate."

    def __init__(self, problems: list[ConfigProblem], file: str) -> None:
        self.problems = problems
        super().__init__("", file=file, count=len(problems), listing="")

    def message(self, lang: str) -> str:
        self.params["listing"] = "\n".join("  " + p.render(lang) for p in self.problems)
        return super().message(lang)

    def to_dict(self, lang: str) -> dict[str, Any]:
        out = super().to_dict(lang)
        out["problems"] = [p.to_dict(lang) for p in self.problems]
        return out


class AllMirrorsFailed(YijianError):
    code = "MIRRORS_ALL_FAILED"
    exit_code = ExitCode.NETWORK
    zh = "{channel} 的所有镜像都失败了：{listing}"
    en = "Every {channel} mirror failed: {listing}"
    hint_zh = "检查网络和代理（config set network.proxy …），运行 ./start.sh mirrors test 查看各镜像状态，或用 ./start.sh mirrors use 指定一个可用的镜像。"
    hint_en = (
        "Check the network and the proxy (config set network.proxy ...), run ./start.sh mirrors test to see "
        "each mirror's state, or pick a working one with ./start.sh mirrors use."
    )


class TorchNoRoute(YijianError):
    """Every torch mirror failed and PyPI carries no equivalent of the pack's torch build on this OS."""

    code = "TORCH_NO_ROUTE"
    exit_code = ExitCode.NETWORK
    zh = "无法安装 {pin}：PyTorch 轮子通道的所有镜像都失败了（{tried}）；{why_zh}"
    en = "Cannot install {pin}: every mirror of the PyTorch wheel channel failed ({tried}); {why_en}"
    hint_zh = (
        "办法：1) 在能上网的电脑下载 {pin} 的轮子（.whl）放进一个文件夹，然后运行 "
        "./start.sh mirrors use torch 文件夹路径（如 D:\\torch-wheels 或 file:///home/me/torch-wheels）；2) 设置能访问 download.pytorch.org 的代理："
        "./start.sh config set network.proxy http://主机:端口；3) 稍后再试：./start.sh mirrors test --channel torch。"
    )
    hint_en = (
        "Fix: 1) on a machine with access, download the {pin} wheel (.whl) into a folder and run "
        "./start.sh mirrors use torch FOLDER (e.g. D:\\torch-wheels or file:///home/me/torch-wheels); 2) set a proxy that reaches download.pytorch.org: "
        "./start.sh config set network.proxy http://host:port; 3) try later: ./start.sh mirrors test --channel torch."
    )


class MirrorChoiceInvalid(YijianError):
    code = "MIRROR_CHOICE_INVALID"
    exit_code = ExitCode.USAGE
    zh = "不能把 {channel} 镜像设为「{value}」：{reason_zh}"
    en = "Cannot use {value!r} as the {channel} mirror: {reason_en}"
    hint_zh = "{fix_zh}"
    hint_en = "{fix_en}"


class MirrorUnusable(YijianError):
    code = "MIRROR_UNUSABLE"
    exit_code = ExitCode.NETWORK
    zh = "镜像 {value} 现在不能用作 {channel}：{reason}"
    en = "The mirror {value} cannot serve as {channel} now: {reason}"
    hint_zh = "检查地址是否正确（{channel} 需要 {expect_zh}）。仍要保存，请加 --force。"
    hint_en = "Check the address ({channel} needs {expect_en}). To save it anyway, add --force."


class OfflineMode(YijianError):
    code = "OFFLINE_MODE"
    exit_code = ExitCode.NETWORK
    zh = "离线模式已开启，不能{action_zh}。"
    en = "Offline mode is on, so Yijian cannot {action_en}."
    hint_zh = "需要联网时运行 ./start.sh config set network.offline false。"
    hint_en = "To go online, run ./start.sh config set network.offline false."


class DownloadFailed(YijianError):
    code = "DOWNLOAD_FAILED"
    exit_code = ExitCode.DOWNLOAD
    zh = "下载失败：{url}（{reason}）"
    en = "Download failed: {url} ({reason})"
    hint_zh = "检查网络和代理，或运行 ./start.sh mirrors test 后换一个镜像，再重试。"
    hint_en = "Check the network and the proxy, or run ./start.sh mirrors test and switch mirrors, then try again."
    # Said only when part of the file is really kept (kept = the .part file's size, in bytes).
    resume_zh = "已下载的 {kept_human} 保留在 {part}；重新运行同一命令会接着下载。"
    resume_en = "The {kept_human} already downloaded are kept in {part}; running the same command again resumes."

    def hint(self, lang: str) -> str:
        base = super().hint(lang)
        if not self.params.get("kept"):
            return base
        return base + " " + self._fill(self.resume_zh if lang == "zh" else self.resume_en)


class WrongContent(YijianError):
    code = "DOWNLOAD_WRONG_CONTENT"
    exit_code = ExitCode.DOWNLOAD
    zh = "服务器返回的不是所需的文件，而是{what_zh}：{url}"
    en = "The server sent {what_en} instead of the file: {url}"
    hint_zh = "文件没有保存。常见原因：链接失效、需要登录或令牌（Civitai 令牌可在 config.toml 的 downloads.civitai_token 设置）、镜像限流。"
    hint_en = (
        "Nothing was saved. Usual causes: a dead link, a login or token is needed (a Civitai token goes in "
        "downloads.civitai_token in config.toml), or the mirror is rate-limiting."
    )


class ChecksumMismatch(YijianError):
    code = "DOWNLOAD_CHECKSUM_MISMATCH"
    exit_code = ExitCode.DOWNLOAD
    zh = "下载的文件校验失败（{what}）：期望 {expected}，实际 {actual}。来源：{url}"
    en = "The downloaded file does not verify ({what}): expected {expected}, got {actual}. Source: {url}"
    hint_zh = "这个文件已删除，没有放进模型文件夹。请确认 sha256 是否写对，或换一个来源重新下载。"
    hint_en = "The file was deleted and did not reach the models folder. Check the sha256 you gave, or download from another source."


class DiskFull(YijianError):
    code = "DISK_FULL"
    exit_code = ExitCode.DOWNLOAD
    zh = "磁盘空间不足：还需要 {need}，{path} 所在的磁盘只剩 {free}。"
    en = "Not enough disk space: {need} more is needed, and the disk holding {path} has {free} free."
    hint_zh = "已下载的部分已保留。腾出空间后重新运行同一命令即可续传。"
    hint_en = "What was downloaded is kept. Free some space, then run the same command again to resume."


class DownloadInterrupted(YijianError):
    code = "DOWNLOAD_INTERRUPTED"
    exit_code = ExitCode.INTERRUPTED
    zh = "下载已暂停，完成了 {percent}：{dest}"
    en = "Download paused at {percent}: {dest}"
    hint_zh = "已下载的部分已保留。再次运行同一命令即可从断点继续。"
    hint_en = "What was downloaded is kept. Run the same command again to continue where it stopped."


class DownloadLocked(YijianError):
    code = "DOWNLOAD_IN_PROGRESS"
    exit_code = ExitCode.DOWNLOAD
    zh = "另一个一键进程（PID {pid}）正在下载这个文件：{dest}"
    en = "Another Yijian process (PID {pid}) is downloading this file: {dest}"
    hint_zh = "等那个下载完成，或者结束那个进程后再试。"
    hint_en = "Wait for that download to finish, or stop that process and try again."


class DestinationExists(YijianError):
    code = "DOWNLOAD_DESTINATION_EXISTS"
    exit_code = ExitCode.DOWNLOAD
    zh = "目标位置已有一个不同的文件：{dest}（{why_zh}）"
    en = "A different file is already at {dest} ({why_en})"
    hint_zh = "为免覆盖你的文件，下载没有进行。请先移走或改名这个文件，再重新下载。"
    hint_en = "To keep your file safe nothing was downloaded. Move or rename it, then download again."


class EnvironmentBuildFailed(YijianError):
    code = "ENV_BUILD_FAILED"
    exit_code = ExitCode.ENVIRONMENT
    zh = "构建生成环境失败（{step}）：{detail}"
    en = "Building the generation environment failed ({step}): {detail}"
    hint_zh = "正在使用的环境没有改动。完整日志：{log}。{advice_zh}"
    hint_en = "The environment in use was not touched. Full log: {log}. {advice_en}"


class NoPythonForPack(YijianError):
    code = "ENV_NO_PYTHON"
    exit_code = ExitCode.ENVIRONMENT
    zh = "找不到环境包需要的 Python {version}，也无法通过镜像安装它。"
    en = "Python {version}, which the pack needs, was not found and could not be installed through the mirrors."
    hint_zh = "把 Python {version} 放到整合包的 python/ 文件夹，或检查 python 通道的镜像（./start.sh mirrors test --channel python）。"
    hint_en = "Put Python {version} in the bundle's python/ folder, or check the python channel (./start.sh mirrors test --channel python)."


class BundledPythonUnavailable(YijianError):
    """setup.python = bundled, and no Python of the pack's version is in the bundle or could be installed into it."""

    code = "ENV_BUNDLED_PYTHON_UNAVAILABLE"
    exit_code = ExitCode.ENVIRONMENT
    zh = "整合包里没有环境需要的 Python {version}，也没能装进来（{reason}）；按设置 setup.python = bundled，没有改用系统的 Python。"
    en = ("The bundle has no Python {version}, which the environment needs, and it could not be installed ({reason}); "
          "with setup.python = bundled the system's Python was not used instead.")  # fmt: skip
    hint_zh = "{how_zh}"
    hint_en = "{how_en}"


class PackFileInvalid(YijianError):
    code = "PACK_INVALID"
    exit_code = ExitCode.ENVIRONMENT
    zh = "环境包文件有 {count} 处错误（{folder}）：\n{listing}"
    en = "The environment pack files have {count} problem(s) ({folder}):\n{listing}"
    hint_zh = "packs/ 文件夹随一键发布；如果改过其中的文件，请按上面的提示修正，或从发布包中恢复原文件。"
    hint_en = (
        "The packs/ folder ships with Yijian; if you edited a file there, fix it as shown or restore the original."
    )


class UnknownPack(YijianError):
    code = "PACK_UNKNOWN"
    exit_code = ExitCode.USAGE
    zh = "没有名为「{name}」的环境包。{suggestion_zh}"
    en = "There is no environment pack {name!r}. {suggestion_en}"
    hint_zh = "运行 ./start.sh packs list 查看所有环境包。"
    hint_en = "Run ./start.sh packs list to see every pack."


class NoPackFits(YijianError):
    code = "PACK_NONE_FITS"
    exit_code = ExitCode.ENVIRONMENT
    zh = "没有适合这台电脑（{machine_zh}）的环境包：\n{listing_zh}"
    en = "No environment pack fits this machine ({machine_en}):\n{listing_en}"
    hint_zh = "运行 ./start.sh packs explain 查看每个包不合适的原因。"
    hint_en = "Run ./start.sh packs explain to see why each pack does not fit."


class NoFreePort(YijianError):
    code = "PORT_NONE_FREE"
    exit_code = ExitCode.FAILURE
    zh = "在 {first} 到 {last} 之间没有找到空闲端口。"
    en = "No free port was found between {first} and {last}."
    hint_zh = "关掉占用端口的程序，或用 ./start.sh config set launch.port 端口号 指定一个。"
    hint_en = "Close the programs holding the ports, or choose one with ./start.sh config set launch.port PORT."


class RuntimeEnvMissing(YijianError):
    code = "RUNTIME_ENV_MISSING"
    exit_code = ExitCode.ENVIRONMENT
    zh = "生成环境还没有建好（{env}）。"
    en = "The generation environment is not built yet ({env})."
    hint_zh = "先运行 ./start.sh setup（或在界面里点 一键启动）。"
    hint_en = "Run ./start.sh setup first (or press One-click start in the TUI)."


class RuntimeStartFailed(YijianError):
    code = "RUNTIME_START_FAILED"
    exit_code = ExitCode.RUNTIME
    zh = "生成界面没有启动：{detail}"
    en = "The generation UI did not start: {detail}"
    hint_zh = "完整输出在 {log}；运行 ./start.sh diagnose {log} 查看原因。"
    hint_en = "The full output is in {log}; run ./start.sh diagnose {log} for the cause."


class ListenNeedsAuth(YijianError):
    code = "LISTEN_WITHOUT_AUTH"
    exit_code = ExitCode.USAGE
    zh = (
        "--listen 会让局域网里的任何人都能使用这台电脑生成图片，必须同时设置登录（--auth 用户名:密码 或 launch.auth）。"
    )
    en = "--listen lets anyone on the network use this computer; it needs a login too (--auth user:password or launch.auth)."
    hint_zh = "加上 --auth 用户名:密码；确实要无密码开放时，加 --insecure-no-auth（不推荐）。"
    hint_en = (
        "Add --auth user:password; to open it without a password anyway, add --insecure-no-auth (not recommended)."
    )


# -- models from links (launcher/models/links.py, civitai.py, modelscope.py) ----------------------------------------

LINK_FORMS_ZH = (
    "模型目录中的名称（./start.sh models catalog）；Civitai 模型页或版本页（civitai.com/models/ID?modelVersionId=ID，"
    "也可以是 civitai.green 等其他域名）、civitai:ID@版本ID、AIR（urn:air:sdxl:lora:civitai:ID@版本ID）、"
    "/api/download/models/版本ID；魔搭 ModelScope 的模型仓库或文件链接（modelscope.cn/models/组织/名称[/file/view/master/文件]）；"
    "Hugging Face 或 hf-mirror 的仓库、resolve 或 blob 链接，或 组织/仓库/文件；直接指向模型文件的 http(s) 链接"
)
LINK_FORMS_EN = (
    "a catalog name (./start.sh models catalog); a Civitai model or version page (civitai.com/models/ID?modelVersionId=ID, "
    "other Civitai domains too), civitai:ID@VERSION, an AIR (urn:air:sdxl:lora:civitai:ID@VERSION) or "
    "/api/download/models/VERSION; a ModelScope repository or file link (modelscope.cn/models/OWNER/NAME"
    "[/file/view/master/FILE]); a Hugging Face or hf-mirror repository, resolve or blob link, or org/repo/file; "
    "an http(s) link straight to a model file"
)


class UnsupportedLink(YijianError):
    """``models download`` got something it cannot fetch: another scheme, a web page, an unknown form."""

    code = "MODEL_LINK_UNSUPPORTED"
    exit_code = ExitCode.USAGE
    zh = "不能从「{link}」下载模型：{why_zh}"
    en = "Cannot download a model from {link!r}: {why_en}"
    hint_zh = "可以下载的形式：" + LINK_FORMS_ZH + "。"
    hint_en = "Accepted forms: " + LINK_FORMS_EN + "."


class LinkNotFound(YijianError):
    """The site answered that the model, version or file does not exist (404/410): retrying cannot help."""

    code = "MODEL_LINK_NOT_FOUND"
    exit_code = ExitCode.DOWNLOAD
    zh = "{site} 上没有这个模型或文件：{what}（{status}）"
    en = "{site} has no such model or file: {what} ({status})"
    hint_zh = "链接可能写错了，或者作者已删除/隐藏了它。请在浏览器里打开模型页确认，再复制新的链接。没有保存任何东西。"
    hint_en = (
        "The link may be mistyped, or its author removed or hid it. Open the model page in a browser to check, "
        "and copy a fresh link. Nothing was saved."
    )


class TokenNeeded(YijianError):
    """A site refused the download without a token (401), or refused the token that was sent."""

    code = "MODEL_TOKEN_NEEDED"
    exit_code = ExitCode.DOWNLOAD
    zh = "{site} 要求登录令牌才能下载：{what}。{state_zh}"
    en = "{site} needs an API token for this download: {what}. {state_en}"
    hint_zh = (
        "在 {page} 登录后创建一个 API 令牌（API Key），然后运行 ./start.sh config set {setting} 你的令牌"
        "（也可以设置环境变量 {env}）。令牌只会发给 {site}，不会显示在屏幕或日志里。"
    )
    hint_en = (
        "Sign in at {page}, create an API key, then run ./start.sh config set {setting} YOUR_TOKEN (or set the "
        "{env} environment variable). The token is sent only to {site} and never shown or logged."
    )


class ModelFileChoice(YijianError):
    """A repository or model version holds several files and none was named, or the one named is not there."""

    code = "MODEL_FILE_CHOICE"
    exit_code = ExitCode.USAGE
    zh = "{where} 里有多个文件，{why_zh}：{listing}"
    en = "{where} holds several files, {why_en}: {listing}"
    hint_zh = "用 --file 文件名 指定要下载哪一个（Civitai 也可以用 --variant fp16|fp32|pruned|full）。"
    hint_en = "Name the one to download with --file NAME (for Civitai also --variant fp16|fp32|pruned|full)."
