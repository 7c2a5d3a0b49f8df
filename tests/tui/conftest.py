"""Fixtures for the TUI tests.

``tui_bundle``: a fresh bundle (code and data from the repository) at a fixed
path, so that SVG snapshots, which may show paths, are the same on every
machine.  ``fixed_status`` replaces the home page's probe with fixed facts
(an RTX 4090 on a 552 driver, a built cu128 environment), so snapshots do
not depend on the machine; pilot tests that want the real probe leave it out.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.i18n import Text
from bootstrap.layout import Bundle

SNAPSHOT_SIZE = (100, 30)


@pytest.fixture
def tui_bundle(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bundle]:
    root = Path(tempfile.gettempdir()) / "yijian-tui-bundle"
    # One fixed path keeps snapshots identical everywhere; a lock keeps two test runs from sharing it.
    lock = open(root.with_suffix(".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    shutil.rmtree(root, ignore_errors=True)
    bundle = Bundle(root)
    bundle.ensure_dirs()
    for folder in ("Stable-diffusion", "Lora", "VAE", "embeddings", "ESRGAN"):
        (bundle.models_dir / folder).mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("YIJIAN_HOME", str(root))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.delenv("NO_COLOR", raising=False)
    yield bundle
    shutil.rmtree(root, ignore_errors=True)
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()


@pytest.fixture
def fixed_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from launcher.tui import status
    from launcher.tui.pages import home

    fixed = status.Status(
        gpu=Text("RTX 4090（sm_89）", "RTX 4090 (sm_89)"), driver="552.22 (CUDA 12.4)", vram="24 GB", python="3.12.8",
        torch="2.10.0+cu128", xformers="0.0.34", pack=Text("cu128（torch 2.10.0+cu128）", "cu128 (torch 2.10.0+cu128)"),
        env_state=Text("已构建（环境包 cu128）", "built (pack cu128)"), mirrors="tuna · nju · hf-mirror", models=3,
    )  # fmt: skip
    monkeypatch.setattr(home, "gather", lambda bundle: fixed)
    monkeypatch.setattr(status, "gather", lambda bundle: fixed)


@pytest.fixture
def snap_compare(snap_compare: Any) -> Any:
    """pytest-textual-snapshot's ``snap_compare``, with every Input's cursor held still before the picture.

    A focused Input blinks its cursor on a timer, so a snapshot taken a moment later differs.
    """
    from textual.widgets import Input

    def compare(app: Any, *args: Any, run_before: Any = None, **kwargs: Any) -> bool:
        async def steady(pilot: Any) -> None:
            if run_before is not None:
                await run_before(pilot)
            for box in pilot.app.query(Input):
                box.cursor_blink = False  # pauses the blink with the cursor hidden
            await pilot.pause()

        result: bool = snap_compare(app, *args, run_before=steady, **kwargs)
        return result

    return compare


def screen_text(app: object) -> str:
    """The screen as plain text, for asserts (Textual's compositor; private but stable enough for tests)."""
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


async def home_settled(app: object, pilot: object) -> None:
    """Wait until the home page's status cards are filled (their probe starts after the first paint)."""
    from launcher.tui.pages.home import HomePage

    for _ in range(200):
        await pilot.pause(0.02)  # type: ignore[attr-defined]
        if app.query_one(HomePage).status is not None:  # type: ignore[attr-defined]
            break
    await app.workers.wait_for_complete()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def settle(app: Any, pilot: Any) -> None:
    """Let the messages that start workers arrive, the workers end, and what they post be handled.

    A loaded machine can delay a Pressed/Changed message past one pause: wait a few rounds.
    """
    for _ in range(3):
        await pilot.pause(0.02)
        await app.workers.wait_for_complete()
    await pilot.pause()
