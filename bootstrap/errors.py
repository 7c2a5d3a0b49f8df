"""The root of Yijian's error tree, and the process exit codes.

Standard library only: stage 0 raises these on a bare Python, and the
launcher builds its own errors on the same root.  Every error carries a
stable ``code`` (part of the ``--json`` contract), a message and a hint in
Chinese and English, and the exit code the CLI ends with.  Errors are caught
only at the CLI and TUI edges, which render them and log the full detail.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar


class ExitCode(enum.IntEnum):
    """Every exit code ``yijian`` and ``start.sh`` use (listed in the README)."""

    OK = 0
    FAILURE = 1  # a command ran and found a problem (e.g. doctor errors)
    USAGE = 2  # bad command line
    CONFIG = 3  # config.toml unreadable or invalid
    NETWORK = 4  # no mirror or endpoint reachable
    DOWNLOAD = 5  # a download failed or did not verify
    ENVIRONMENT = 6  # building or checking an environment failed
    RUNTIME = 7  # the generation UI failed to start or stopped
    NOT_BUILT = 8  # the feature is not built yet
    BUNDLE = 9  # the bundle folder cannot be used (path, permissions)
    INTERRUPTED = 130  # Ctrl-C


class YijianError(Exception):
    """Base of every error Yijian reports to a user.

    Subclasses set ``code``, ``exit_code`` and the four templates; the
    templates are ``str.format`` strings filled from ``params``.
    """

    code: ClassVar[str] = "YIJIAN_ERROR"
    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE
    zh: ClassVar[str] = "出错了：{detail}"
    en: ClassVar[str] = "Something went wrong: {detail}"
    hint_zh: ClassVar[str] = "详细信息已写入 logs/ 目录。"
    hint_en: ClassVar[str] = "The full detail is in the logs/ folder."

    def __init__(self, detail: str = "", /, **params: Any) -> None:
        self.params: dict[str, Any] = {"detail": detail, **params}
        super().__init__(self.message("en"))

    def _fill(self, template: str) -> str:
        try:
            return template.format(**self.params)
        except (KeyError, IndexError, ValueError):
            return template

    def message(self, lang: str) -> str:
        return self._fill(self.zh if lang == "zh" else self.en)

    def hint(self, lang: str) -> str:
        return self._fill(self.hint_zh if lang == "zh" else self.hint_en)

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message(lang),
            "hint": self.hint(lang),
            "exit_code": int(self.exit_code),
        }


class UsageError(YijianError):
    code = "USAGE"
    exit_code = ExitCode.USAGE
    zh = "命令用法有误：{detail}"
    en = "Invalid command line: {detail}"
    hint_zh = "运行 ./start.sh --help 查看用法。"
    hint_en = "Run ./start.sh --help to see the usage."


class NotBuiltYet(YijianError):
    code = "NOT_BUILT_YET"
    exit_code = ExitCode.NOT_BUILT
    zh = "「{feature}」功能尚未完成，这个版本还不能使用它。"
    en = "'{feature}' is not built yet; this version cannot do it."
    hint_zh = "它正在开发中（{plan}）。请关注后续版本。"
    hint_en = "It is being built ({plan}). Watch for the next release."


class BundlePathError(YijianError):
    code = "BUNDLE_PATH_UNSUPPORTED"
    exit_code = ExitCode.BUNDLE
    zh = "整合包所在的文件夹不能使用：{path}\n原因：{reason_zh}"
    en = "The bundle folder cannot be used: {path}\nReason: {reason_en}"
    hint_zh = "{fix_zh}"
    hint_en = "{fix_en}"


class BundleNotWritable(YijianError):
    code = "BUNDLE_NOT_WRITABLE"
    exit_code = ExitCode.BUNDLE
    zh = "无法写入整合包文件夹：{path}（{detail}）"
    en = "Cannot write to the bundle folder: {path} ({detail})"
    hint_zh = "请把整合包解压到自己有写入权限的文件夹（不要放在 Program Files 或只读磁盘上）。"
    hint_en = "Unpack the bundle into a folder you can write to (not Program Files or a read-only disk)."


class LauncherEnvError(YijianError):
    code = "LAUNCHER_ENV_FAILED"
    exit_code = ExitCode.ENVIRONMENT
    zh = "准备启动器环境失败：{detail}"
    en = "Could not prepare the launcher environment: {detail}"
    hint_zh = "已尝试的镜像：{tried}。完整日志：{log}。检查网络或在 config.toml 的 [mirrors] 中换一个 pypi 镜像后重试。"
    hint_en = (
        "Mirrors tried: {tried}. Full log: {log}. Check the network, or pick another "
        "pypi mirror under [mirrors] in config.toml, then try again."
    )


class LoginInvalid(YijianError):
    """A UI login that cannot be used (its value is never part of the message)."""

    code = "LOGIN_INVALID"
    exit_code = ExitCode.USAGE
    zh = "登录设置有误：{detail}"
    en = "The login cannot be used: {detail}"
    hint_zh = "登录写成 用户名:密码（如 --auth alice:密码 或 config set launch.auth alice:密码）；--gradio-auth-path 指向每行一个 用户名:密码 的文件。"
    hint_en = (
        "Write a login as user:password (--auth alice:secret, or config set launch.auth alice:secret); "
        "--gradio-auth-path names a file with one user:password per line."
    )


class A1111FlagInvalid(YijianError):
    """An A1111-style flag that cannot be used: unknown to A1111, missing its value, or a value of the wrong kind."""

    code = "A1111_FLAG_INVALID"
    exit_code = ExitCode.USAGE
    zh = "启动参数有误：{detail_zh}"
    en = "Bad launch flag: {detail}"
    hint_zh = (
        "一键接受 AUTOMATIC1111 1.10 的全部参数（README 的「A1111 参数」一节列出了每个参数在这里的作用）；"
        "请检查拼写，或去掉这个参数。参数来自 COMMANDLINE_ARGS、launch.args、webui-user 文件或 -- 之后。"
    )
    hint_en = (
        "Yijian accepts every AUTOMATIC1111 1.10 flag (the README's 'A1111 flags' part says what each does here); "
        "check the spelling or drop the flag. Flags come from COMMANDLINE_ARGS, launch.args, a webui-user file "
        "or after --."
    )
