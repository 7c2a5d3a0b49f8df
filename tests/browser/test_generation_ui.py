"""The generation UI as a user meets it: the real ``python -m runtime --demo`` driven by Chromium.

One runtime process serves the whole module (its imports take seconds).  The
page is opened in a Chinese and an English browser, a 64x64 image is made
with the demo model, the image the gallery serves and the file saved under
``outputs/`` are checked for A1111's ``parameters`` text, and the PNG Info
tab reads that file back.  Chromium is the system's ``/usr/bin/chromium``
(``tests/run.sh`` installs it as root); without it the browser tests are
skipped with the reason, never ``playwright install``\\ ed.
"""

from __future__ import annotations

import io
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.hermetic import REPO, sealed_env_dict
from tests.support.httpbase import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]  # fmt: skip
READY_TIMEOUT = 120.0  # imports alone take ~10 s here, several times that while other suites run
GENERATE_TIMEOUT_MS = 60_000
SEED = 20240501
PROMPT = "一只猫 a cat on a sofa"
SCREENSHOT_COPY = Path("/tmp/yijian-ui-zh.png")  # for a human to look at; the test's own copies are in tmp
TABS_ZH = ["文生图", "图生图", "PNG 图片信息", "模型", "设置"]
TABS_EN = ["txt2img", "img2img", "PNG Info", "Models", "Settings"]


# --- the runtime process ------------------------------------------------------------------------------------------


@dataclass
class Runtime:
    proc: subprocess.Popen[str]
    port: int
    root: Path
    lines: list[str] = field(default_factory=list)  # everything it printed so far (stdout and stderr)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "\n".join(self.lines)


def _pump(proc: subprocess.Popen[str], lines: list[str], seen: queue.Queue[str | None]) -> None:
    """Read the child's output to its end, so a full pipe can never block it."""
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        seen.put(lines[-1])
    seen.put(None)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # its own session (start_new_session), so its whole group
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    base = tmp_path_factory.mktemp("runtime")
    sealed, env = sealed_env_dict(base / "sealed")
    env.update(
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        GRADIO_TEMP_DIR=str(base / "gradio-tmp"),  # Gradio's copies of the results; /tmp/gradio by default
    )
    port = free_port()
    argv = [sys.executable, "-m", "runtime", "--demo", "--no-browser", "--port", str(port), "--root", str(sealed.root)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                            start_new_session=True)  # fmt: skip
    rt = Runtime(proc, port, sealed.root)
    seen: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, rt.lines, seen), daemon=True).start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no ready line within {READY_TIMEOUT:.0f} s; output so far:\n{rt.output()}")
            try:
                line = seen.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                proc.wait(timeout=10)
                pytest.fail(f"the runtime exited with {proc.returncode} before it was ready:\n{rt.output()}")
            if line.startswith("Running on local URL:"):
                break
        yield rt
    finally:
        _stop(proc)


# --- the browser --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: tests/run.sh installs it when run as root (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements/dev.txt)")
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
    finally:
        pw.stop()


def _open(browser: Any, runtime: Runtime, locale: str) -> Any:
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(runtime.url + "/")
    page.locator("#txt2img_prompt textarea").wait_for()
    return page


@pytest.fixture(scope="module")
def zh_page(browser: Any, runtime: Runtime) -> Iterator[Any]:
    page = _open(browser, runtime, "zh-CN")
    yield page
    page.context.close()


def _tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _set_number(page: Any, selector: str, value: int) -> None:
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Enter")


@dataclass(frozen=True)
class Generated:
    info: str  # the info textbox under the gallery
    src: str  # the gallery image's URL
    served: bytes  # what that URL serves: what a user downloads
    saved: list[Path]  # outputs/txt2img-images/<date>/*-SEED.png
    screenshot: Path


@pytest.fixture(scope="module")
def generated(zh_page: Any, runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """One 64x64, 4-step image made through the Chinese page, as a user makes it."""
    from playwright.sync_api import expect

    page = zh_page
    _tab(page, "文生图")
    page.locator("#txt2img_prompt textarea").fill(PROMPT)
    _set_number(page, "#txt2img_steps input[type=number]", 4)
    _set_number(page, "#txt2img_width input[type=number]", 64)
    _set_number(page, "#txt2img_height input[type=number]", 64)
    _set_number(page, "#txt2img_seed input", SEED)
    page.locator("#txt2img_generate").click()
    page.locator("#txt2img_gallery img").first.wait_for(timeout=GENERATE_TIMEOUT_MS)
    info = page.locator("#txt2img_info textarea")
    expect(info).to_have_value(re.compile(rf"Seed: {SEED}\b"), timeout=GENERATE_TIMEOUT_MS)
    src = page.locator("#txt2img_gallery img").first.get_attribute("src") or ""
    response = page.request.get(src)
    assert response.ok, f"GET {src}: {response.status}"
    shot = tmp_path_factory.mktemp("screens") / "txt2img-zh.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copyfile(shot, SCREENSHOT_COPY)
    saved = sorted((runtime.root / "outputs" / "txt2img-images").glob(f"*/*-{SEED}.png"))
    return Generated(info.input_value(), src, response.body(), saved, shot)


# --- the tests ----------------------------------------------------------------------------------------------------


def test_startup_prints_the_ready_line_and_then_serves_the_page(runtime: Runtime) -> None:
    ready = f"Running on local URL:  http://127.0.0.1:{runtime.port}"
    assert ready in runtime.lines, runtime.output()
    assert runtime.proc.poll() is None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(runtime.url + "/", timeout=30) as r:
        assert r.status == 200
        assert b"<html" in r.read(4096).lower()


def test_chinese_browser_gets_chinese_tabs_and_the_demo_banner(zh_page: Any) -> None:
    assert zh_page.get_by_role("tab").all_inner_texts() == TABS_ZH
    assert "演示模型" in zh_page.locator("#demo_banner").inner_text()
    assert zh_page.locator("#txt2img_generate").inner_text().strip() == "生成"
    assert "正向提示词" in zh_page.locator("#txt2img_prompt [data-testid=block-info]").inner_text()


def test_english_browser_gets_english_tabs(browser: Any, runtime: Runtime) -> None:
    page = _open(browser, runtime, "en-US")
    try:
        assert page.get_by_role("tab").all_inner_texts() == TABS_EN
        assert page.locator("#demo_banner").inner_text().startswith("⚠ Demo model")
        assert page.locator("#txt2img_generate").inner_text().strip() == "Generate"
    finally:
        page.context.close()


def test_txt2img_shows_the_image_and_its_parameters(generated: Generated) -> None:
    from runtime.pnginfo import parse_parameters

    info = parse_parameters(generated.info)
    assert info["Prompt"] == PROMPT
    assert (info["Seed"], info["Steps"], info["Size-1"], info["Size-2"]) == (str(SEED), "4", "64", "64")
    assert info["Model"] == "demo-random-weights"
    assert generated.src.startswith("http://127.0.0.1:"), generated.src  # never an outside host
    assert generated.screenshot.stat().st_size > 10_000


def test_the_served_image_and_the_saved_file_carry_the_parameters_text(generated: Generated) -> None:
    from PIL import Image

    from runtime.pnginfo import read_parameters

    assert generated.served[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(generated.served)) as im:
        assert im.size == (64, 64)
    text = read_parameters(io.BytesIO(generated.served))
    assert text is not None and f"Seed: {SEED}," in text
    assert text.splitlines()[0] == PROMPT
    assert text == generated.info  # the info box shows exactly what the file holds
    assert len(generated.saved) == 1, generated.saved
    saved = generated.saved[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", saved.parent.name) and saved.name == f"00000-{SEED}.png"
    assert saved.read_bytes() == generated.served  # the gallery serves the saved file itself


def test_png_info_tab_reads_the_saved_file(zh_page: Any, generated: Generated) -> None:
    from playwright.sync_api import expect

    page = zh_page
    _tab(page, "PNG 图片信息")
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(generated.saved[0]))
    raw = page.locator("#pnginfo_text textarea")
    expect(raw).to_have_value(re.compile(rf"Seed: {SEED}\b"), timeout=GENERATE_TIMEOUT_MS)
    assert raw.input_value() == generated.info
    fields = re.sub(r"\s+", "", page.locator("#pnginfo_fields").inner_text())  # gr.JSON puts tokens on lines
    assert f'"Seed":"{SEED}"' in fields and '"Size-1":"64"' in fields
    page.screenshot(path=str(generated.screenshot.with_name("pnginfo-zh.png")), full_page=True)


def test_png_info_sends_the_parameters_to_txt2img(zh_page: Any, runtime: Runtime, generated: Generated) -> None:
    from playwright.sync_api import expect

    page = zh_page
    _tab(page, "文生图")
    page.locator("#txt2img_prompt textarea").fill("")
    _set_number(page, "#txt2img_seed input", -1)
    _set_number(page, "#txt2img_steps input[type=number]", 20)
    _tab(page, "PNG 图片信息")
    if not page.locator("#pnginfo_text textarea").input_value():
        page.locator("#pnginfo_image input[type=file]").set_input_files(str(generated.saved[0]))
        expect(page.locator("#pnginfo_text textarea")).to_have_value(re.compile(rf"Seed: {SEED}\b"))
    page.locator("#pnginfo_send_txt2img").click()  # switches to 文生图 by itself, as A1111 does
    expect(page.locator("#txt2img_seed input")).to_have_value(str(SEED), timeout=10_000)
    expect(page.locator("#txt2img_steps input[type=number]")).to_have_value("4")
    expect(page.locator("#txt2img_prompt textarea")).to_have_value(PROMPT)
    assert "Traceback" not in runtime.output()
