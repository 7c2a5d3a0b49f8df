"""What the 模型管理 page's tabs share: their state, paths as users know them, errors in plain words."""

from __future__ import annotations

from pathlib import Path

from bootstrap.errors import YijianError
from launcher.tui.pages.base import Page


class ModelsBase(Page):
    """The page's common ground; the tabs (:mod:`.library`, :mod:`.downloads`) build on it."""

    def _buttons(self) -> None:
        """Enable what can be pressed now (the page, which holds every tab, decides)."""
        raise NotImplementedError

    def refresh_models(self) -> None:
        """Read the library and the catalog again (the page starts both tabs' workers)."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------------------------
    def _shown(self, path: Path) -> str:
        """A path in the bundle as ``models/Lora/x.safetensors`` (the bundle is the folder users know); others whole."""
        try:
            return str(path.relative_to(self.yijian.bundle.root))
        except ValueError:
            return str(path)

    def _error_text(self, error: BaseException | None) -> str:
        if isinstance(error, YijianError):
            return f"✗ [{error.code}] {error.message(self.lang)}\n  {error.hint(self.lang)}"
        detail = f"{type(error).__name__}: {error}" if error is not None else ""
        return self.tr(f"✗ 意外错误：{detail}\n  请到「疑难解答」页生成诊断包并反馈。",
                       f"✗ Unexpected error: {detail}\n  Make a diagnostic bundle on the Troubleshoot page and report it.")  # fmt: skip
