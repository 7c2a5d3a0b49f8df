"""Opening the generation UI in a browser, and saying so only when it happened.

:func:`why_no_browser` decides from the environment alone whether a browser
can be shown at all (a CI job, a Linux session without a display);
:func:`open_url` then asks :mod:`webbrowser` for a graphical browser and
opens it.  Both answer with the reason when no browser was opened, so the
caller can say "open http://… in your browser" instead of claiming it did.
Standard library only: the launcher and the runtime share it.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Callable, Mapping

from bootstrap.i18n import Text

# Browsers that draw in the terminal: opening one from the TUI or a service would take over the console.
CONSOLE_BROWSERS = frozenset({"www-browser", "links", "elinks", "lynx", "w3m", "links2"})
# A CI job has nobody in front of it, whatever display it may have.
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TF_BUILD")


def _set(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def why_no_browser(environ: Mapping[str, str] | None = None, platform: str | None = None) -> Text | None:
    """Why no browser can be shown here (None: one may be)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    for name in CI_VARIABLES:
        if _set(environ, name):
            return Text(f"这是自动化环境（{name} 已设置），没有人看浏览器", f"this is a CI job ({name} is set)")
    if platform.startswith(("win", "cygwin", "darwin")):
        return None  # Windows and macOS always have a desktop to open a browser on
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return Text("没有图形界面（DISPLAY 与 WAYLAND_DISPLAY 都未设置，比如通过 SSH 登录）",
                    "no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set, e.g. over SSH)")  # fmt: skip
    return None


def open_url(url: str, environ: Mapping[str, str] | None = None, platform: str | None = None, *,
             get: Callable[[], webbrowser.BaseBrowser] = webbrowser.get) -> Text | None:  # fmt: skip
    """Open ``url`` in a graphical browser; None when one was opened, else the reason it was not."""
    why = why_no_browser(environ, platform)
    if why is not None:
        return why
    try:
        browser = get()
    except webbrowser.Error:
        return Text("没有找到可用的浏览器", "no browser is registered on this system")
    if getattr(browser, "name", "") in CONSOLE_BROWSERS:
        return Text(f"只找到终端浏览器 {browser.name}", f"only a terminal browser ({browser.name}) was found")
    try:
        opened = browser.open(url)
    except OSError as e:
        return Text(f"浏览器没有启动：{e}", f"the browser did not start: {e}")
    if not opened:
        return Text("浏览器没有启动", "the browser did not start")
    return None


def opened_text(url: str, why: Text | None) -> Text:
    """The line the user reads after trying to open ``url``: opened, or where to go by hand and why."""
    if why is None:
        return Text(f"已打开 {url}", f"opened {url}")
    return Text(f"没有打开浏览器（{why.zh}）：请在浏览器里打开 {url}",
                f"no browser was opened ({why.en}): open {url} in your browser")  # fmt: skip


def result(returned: object) -> Text | None:
    """What an opener returned, as :func:`open_url` answers: None (opened) or the reason.

    ``webbrowser.open`` answers True/False; an opener that answers None (a test's
    ``list.append``) counts as opened.
    """
    if returned is None or returned is True:
        return None
    if isinstance(returned, Text):
        return returned
    return Text("浏览器没有启动", "the browser did not start")
