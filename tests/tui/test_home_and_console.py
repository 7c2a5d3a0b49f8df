"""The home page (一键启动) and the console (控制台): pilot tests, the one-click flow in the TUI, snapshots."""

from __future__ import annotations

import base64
import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher.oneclick import OneClickOptions
from launcher.tui.app import YijianApp
from tests.tui.conftest import SNAPSHOT_SIZE, home_settled, screen_text


async def test_home_shows_this_machines_real_state(tui_bundle: Bundle) -> None:
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await home_settled(app, pilot)
        text = screen_text(app)
        for page in ("一键启动", "高级选项", "疑难解答", "模型管理", "网络/镜像", "环境", "控制台"):
            assert page in text
        assert "未检测到 NVIDIA 显卡" in text  # this machine has none (the sealed PATH has no nvidia-smi)
        assert "未构建" in text  # a fresh bundle has no environment
        assert "1. 预检" in text and "8. 打开浏览器" in text


async def test_f2_switches_every_label_and_the_footer(tui_bundle: Bundle, fixed_status: None) -> None:
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await home_settled(app, pilot)
        await pilot.press("f2")
        await pilot.pause()
        text = screen_text(app)
        assert app.lang == "en"
        assert "Start" in text and "Troubleshoot" in text and "1. Preflight" in text and "RTX 4090" in text
        assert "Quit" in text and "退出" not in text
        await pilot.press("f2")
        await pilot.pause()
        assert "退出" in screen_text(app)


async def test_sidebar_reaches_every_page(tui_bundle: Bundle, fixed_status: None) -> None:
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        for page in ("advanced", "trouble", "models", "network", "environment", "console", "home"):
            assert await pilot.click(f"#nav-{page}")
            await pilot.pause()
            assert app.query_one("#pages").current == page  # type: ignore[attr-defined]


async def test_a_failing_step_shows_its_diagnosis_and_the_launcher_stays_usable(tui_bundle: Bundle) -> None:
    (tui_bundle.root / "config.toml").write_text("[launch]\nport = 80\n", encoding="utf-8")
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.press("f5")
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = screen_text(app)
        assert "✗ 1. Preflight" in text and "CONFIG_INVALID" in text and "config.toml:2" in text
        assert not app.query_one("#start").disabled  # type: ignore[attr-defined]
        assert await pilot.click("#nav-console")


@pytest.mark.slow
async def test_one_click_in_the_tui_ends_with_a_served_image(tmp_path: Path, tiny_sd: object,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from tests.support.bundle_copy import copy_bundle
    from tests.support.httpbase import free_port
    from tests.support.runtime_env import fake_runtime_env

    root = copy_bundle(tmp_path / "b")
    fake_runtime_env(root)
    shutil.copytree(tiny_sd.diffusers_dir, root / "models" / "Stable-diffusion" / "tiny")  # type: ignore[attr-defined]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    opened: list[str] = []
    app = YijianApp(Bundle(root, code=root), "en", options=OneClickOptions(port=free_port()), opener=opened.append)
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.click("#start")
        for _ in range(600):
            await pilot.pause(0.2)
            if app.url:
                break
        assert app.url and opened == [app.url]
        body = json.dumps({"prompt": "a cat", "seed": 3, "steps": 3, "width": 64, "height": 64}).encode()
        req = urllib.request.Request(
            f"{app.url}/sdapi/v1/txt2img", data=body, headers={"Content-Type": "application/json"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        png = base64.b64decode(json.load(opener.open(req, timeout=120))["images"][0])
        assert png[:4] == b"\x89PNG"
        text = screen_text(app)
        assert "● 7. Ready" in text and "● 8. Browser" in text
        assert await pilot.click("#nav-console")
        await pilot.pause()
        assert "Running on local URL" in "\n".join(app.console_lines)
        assert await pilot.click("#console-stop")
        for _ in range(200):
            await pilot.pause(0.1)
            if app.runtime is None:
                break
        assert app.runtime is None
    # leaving the app never leaves a runtime behind
    assert app.flow is None


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_snapshot_home(snap_compare: object, tui_bundle: Bundle, fixed_status: None, lang: str) -> None:
    async def settle(pilot: object) -> None:
        await home_settled(pilot.app, pilot)  # type: ignore[attr-defined]

    assert snap_compare(YijianApp(tui_bundle, lang), terminal_size=SNAPSHOT_SIZE, run_before=settle)  # type: ignore[operator]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_snapshot_console(snap_compare: object, tui_bundle: Bundle, fixed_status: None, lang: str) -> None:
    async def to_console(pilot: object) -> None:
        app = pilot.app  # type: ignore[attr-defined]
        await home_settled(app, pilot)
        for _ in range(50):  # the sidebar's first highlight may still be on its way: go until it stays
            app.query_one("#nav").index = 6  # the sidebar's 控制台
            await pilot.pause()  # type: ignore[attr-defined]
            if app.query_one("#pages").current == "console":
                break
        app.set_focus(None)
        await pilot.pause()  # type: ignore[attr-defined]

    assert snap_compare(YijianApp(tui_bundle, lang), terminal_size=SNAPSHOT_SIZE, run_before=to_console)  # type: ignore[operator]
