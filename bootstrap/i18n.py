"""Choosing the interface language, zh or en.

Order: an explicit choice (``--lang``), ``YIJIAN_LANG``, the ``language`` in
config.toml (passed in by the caller), then the locale.  Standard library
only, so stage 0 speaks the user's language too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

LANGS = ("zh", "en")


def _from_locale_name(name: str) -> str | None:
    name = name.strip().lower()
    if not name or name in ("c", "posix") or name.startswith(("c.", "posix.")):
        return None
    if name.startswith("zh") or "chinese" in name:
        return "zh"
    return "en"


def _windows_ui_language() -> str | None:
    try:
        import ctypes

        lang_id = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    # The primary language id of Chinese is 0x04, whatever the sub-language.
    return "zh" if int(lang_id) & 0x3FF == 0x04 else "en"


def detect_language(
    explicit: str | None = None,
    configured: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    env = os.environ if environ is None else environ
    for choice in (explicit, env.get("YIJIAN_LANG"), configured):
        if choice and choice.lower() in LANGS:
            return choice.lower()
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(var, "")
        if var == "LANGUAGE":
            value = value.split(":")[0]
        found = _from_locale_name(value)
        if found:
            return found
    if sys.platform == "win32" and environ is None:
        found = _windows_ui_language()
        if found:
            return found
    return "en"


def pick(lang: str, zh: str, en: str) -> str:
    """The text for ``lang``."""
    return zh if lang == "zh" else en


class Text(NamedTuple):
    """One sentence in both languages, chosen when it is shown."""

    zh: str
    en: str

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


def lang_flag(argv: Sequence[str]) -> str | None:
    """The value of ``--lang`` in a command line, read before the full parser exists."""
    for i, arg in enumerate(argv):
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
    return None
