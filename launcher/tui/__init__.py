"""The launcher's terminal UI (Textual), in the style of 绘世启动器.

A thin face over the launcher core: pages show what the core reports and
call it in worker threads; no business logic lives here.  ``run`` is what
``./start.sh`` with no command opens.
"""

from __future__ import annotations

from bootstrap.layout import Bundle


def run(bundle: Bundle, lang: str) -> int:
    from launcher.tui.app import YijianApp

    app = YijianApp(bundle, lang)
    app.run()
    return app.return_code or 0
