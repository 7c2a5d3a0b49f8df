"""``yijian``: the command-line face of the launcher, and its error edge.

This is one of the two places (with the TUI) where Yijian errors are caught:
each is shown as its message and hint on stderr (or as JSON with
``--json``), the full detail goes to logs/yijian.log, and the process ends
with the error's exit code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from bootstrap.errors import ExitCode, NotBuiltYet, YijianError
from bootstrap.i18n import detect_language, lang_flag, pick
from bootstrap.layout import Bundle
from bootstrap.redact import remember_argv
from launcher.cli.context import Context
from launcher.cli.output import emit_json, say
from launcher.logs import setup_logging

log = logging.getLogger("yijian.cli")


def _configured_language(bundle: Bundle) -> str | None:
    """``general.language`` if config.toml is readable; never raises."""
    from bootstrap.tomlread import TomlSubsetError, load

    try:
        data = load(bundle.config_file)
    except (OSError, UnicodeDecodeError, TomlSubsetError):
        return None
    value = data.get("general", {}).get("language") if isinstance(data.get("general"), dict) else None
    return value if isinstance(value, str) else None


def _wants_json(argv: Sequence[str]) -> bool:
    return "--json" in argv


def _render_error(exc: YijianError, lang: str, as_json: bool, log_file: str | None) -> None:
    if as_json:
        body = exc.to_dict(lang)
        if log_file:
            body["log"] = log_file
        emit_json({"error": body})
        return
    label = pick(lang, "错误", "Error")
    say(f"{label} [{exc.code}]: {exc.message(lang)}")
    hint = exc.hint(lang)
    if hint:
        say(pick(lang, "提示：", "Hint: ") + hint)
    if log_file and not isinstance(exc, NotBuiltYet):
        say(pick(lang, "日志：", "Log: ") + log_file)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    bundle = Bundle.locate()
    lang = detect_language(lang_flag(args_in), _configured_language(bundle))
    remember_argv(args_in)  # a login or token given here is masked in every log, whatever its shape
    log_path = setup_logging(bundle)
    log_file = str(log_path) if log_path else None
    ctx = Context(bundle=bundle, lang=lang)
    as_json = _wants_json(args_in)

    from launcher.cli.parser import build_parser

    parser = build_parser(lang)
    args = parser.parse_args(args_in)
    try:
        if args.command is None:
            from launcher.tui import run

            return run(bundle, lang)
        log.info("yijian %s", " ".join(args_in))
        code = args.handler(ctx, args)
        return int(code or 0)
    except YijianError as exc:
        log.error("%s: %s", exc.code, exc.message("en"), exc_info=True)
        _render_error(exc, lang, as_json, log_file)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        say(pick(lang, "已中断。", "Interrupted."))
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # the edge: an unexpected failure still ends cleanly
        log.exception("unexpected error")
        say(pick(lang, f"内部错误：{exc!r}", f"Internal error: {exc!r}"))
        if log_file:
            say(pick(lang, f"完整信息见 {log_file}，报告问题时请附上它。",
                     f"The full detail is in {log_file}; please attach it to a bug report."))  # fmt: skip
        return int(ExitCode.FAILURE)
