"""模型管理 (the Models page): :class:`ModelsPage` and the helpers other pages use (:func:`open_folder`)."""

from __future__ import annotations

import shutil
import sys

from bootstrap import proc
from launcher.tui.pages.models.page import ModelsPage
from launcher.tui.pages.models.words import human_size, open_folder

__all__ = ["ModelsPage", "human_size", "open_folder", "proc", "shutil", "sys"]
