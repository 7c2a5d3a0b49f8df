"""(being written)"""

from __future__ import annotations

from launcher.tui.pages.base import Page


class ModelsPage(Page):
    pass
