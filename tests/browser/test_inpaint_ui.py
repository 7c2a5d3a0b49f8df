"""Inpainting through the page, as a user does it: the real ``python -m runtime --demo`` driven by Chromium.

In a Chinese browser a stroke is painted with the brush of the 局部重绘 (Inpaint)
editor; in an English one an image and a mask are uploaded on the Inpaint
upload tab.  Each generates, and the picture that comes back must be the
source wherever A1111 keeps it (far from the stroke or the mask, bit for bit)
and changed under the stroke or the mask.  Screenshots go to ``/tmp`` for a
human to look at.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser.test_generation_ui import GENERATE_TIMEOUT_MS, Runtime, _open, _set_number, _tab
from tests.browser.test_generation_ui import browser as _browser_fixture  # noqa: F401 - registers "browser"
from tests.browser.test_generation_ui import runtime as _runtime_fixture  # noqa: F401 - registers "runtime"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZE = 128
SEED = 4242
SHOTS = Path("/tmp")


def _source(path: Path) -> np.ndarray:
    from PIL import Image

    pixels = (np.random.RandomState(11).rand(SIZE, SIZE, 3) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels.astype(np.int16)


def _settings(page: Any) -> None:
    page.locator("#img2img_prompt textarea").fill("一只猫 a cat")
    _set_number(page, "#img2img_steps input[type=number]", 4)
    _set_number(page, "#img2img_width input[type=number]", SIZE)
    _set_number(page, "#img2img_height input[type=number]", SIZE)
    _set_number(page, "#img2img_seed input", SEED)
    _set_number(page, "#img2img_denoising_strength input[type=number]", 1)


def _generate(page: Any, shot: Path) -> tuple[np.ndarray, str]:
    """Click Generate; the served result as pixels and the info text.  A screenshot is kept in /tmp."""
    from PIL import Image
    from playwright.sync_api import expect

    page.locator("#img2img_generate").click()
    info = page.locator("#img2img_info textarea")
    expect(info).to_have_value(re.compile(rf"Seed: {SEED}\b"), timeout=GENERATE_TIMEOUT_MS)
    src = page.locator("#img2img_gallery img").first.get_attribute("src") or ""
    response = page.request.get(src)
    assert response.ok, f"GET {src}: {response.status}"
    page.screenshot(path=str(shot), full_page=True)
    with Image.open(io.BytesIO(response.body())) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16), info.input_value()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("inpaint-shots")
    yield folder
    for shot in folder.glob("*.png"):  # for a human to look at
        shutil.copyfile(shot, SHOTS / f"yijian-{shot.name}")


def test_painting_a_stroke_in_the_chinese_inpaint_editor_repaints_only_there(
    browser: Any, runtime: Runtime, shots: Path, tmp_path: Path
) -> None:
    page = _open(browser, runtime, "zh-CN")
    try:
        source = _source(tmp_path / "source.png")
        _tab(page, "图生图")
        page.get_by_role("tab", name="局部重绘", exact=True).click()
        assert page.locator("#img2img_mask_blur [data-testid=block-info]").inner_text().strip() == "蒙版边缘模糊度"
        assert "仅蒙版区域" in page.locator("#img2img_inpaint_full_res").inner_text()
        page.locator("#img2maskimg input[type=file]").first.set_input_files(str(tmp_path / "source.png"))
        page.get_by_role("button", name="Brush", exact=True).wait_for()
        page.wait_for_timeout(500)  # the canvas lays the picture out after the upload
        box = page.locator("#img2maskimg canvas").first.bounding_box()
        assert box is not None
        scale = min(box["width"], box["height"]) / SIZE * 0.999
        left = box["x"] + (box["width"] - SIZE * scale) / 2
        top = box["y"] + (box["height"] - SIZE * scale) / 2
        # after an upload the brush is the tool in hand
        page.mouse.move(left + 48 * scale, top + 64 * scale)  # a stroke across the middle, x 48..80 at y 64
        page.mouse.down()
        for x in range(48, 81, 4):
            page.mouse.move(left + x * scale, top + 64 * scale)
        page.mouse.up()
        page.screenshot(path=str(shots / "inpaint-stroke-zh.png"), full_page=True)
        _settings(page)
        out, info = _generate(page, shots / "inpaint-result-zh.png")
    finally:
        page.context.close()
    assert out.shape == source.shape
    assert "Mask blur: 4" in info and "Denoising strength: 1" in info
    far = np.ones((SIZE, SIZE), dtype=bool)
    far[24:104, 16:112] = False  # the stroke, its brush radius and the blur stay inside this box
    assert (out[far] == source[far]).all()
    assert (out[60:68, 52:76] != source[60:68, 52:76]).any(axis=-1).mean() > 0.5  # under the stroke: painted
    changed = (out != source).any(axis=-1)
    assert changed.sum() < SIZE * SIZE / 2


def test_an_uploaded_mask_in_the_english_page_repaints_only_there(
    browser: Any, runtime: Runtime, shots: Path, tmp_path: Path
) -> None:
    from PIL import Image

    page = _open(browser, runtime, "en-US")
    try:
        source = _source(tmp_path / "source.png")
        mask = Image.new("L", (SIZE, SIZE), 0)
        mask.paste(255, (40, 32, 96, 80))
        mask.save(tmp_path / "mask.png")
        _tab(page, "img2img")
        page.get_by_role("tab", name="Inpaint upload", exact=True).click()
        assert page.locator("#img2img_inpainting_fill").inner_text().count("latent") == 2
        page.locator("#img_inpaint_base input[type=file]").set_input_files(str(tmp_path / "source.png"))
        page.locator("#img_inpaint_mask input[type=file]").set_input_files(str(tmp_path / "mask.png"))
        page.locator("#img_inpaint_mask img").first.wait_for()
        page.locator("#img2img_inpainting_fill").get_by_label("latent noise").check()
        page.locator("#img2img_inpaint_full_res").get_by_label("Only masked").check()
        _settings(page)
        out, info = _generate(page, shots / "inpaint-upload-en.png")
    finally:
        page.context.close()
    assert "Inpaint area: Only masked" in info and "Masked content: latent noise" in info
    far = np.ones((SIZE, SIZE), dtype=bool)
    far[32 - 12 : 80 + 12, 40 - 12 : 96 + 12] = False  # the mask grown by three blur widths
    assert (out[far] == source[far]).all()
    inner = (slice(36, 76), slice(44, 92))
    assert (out[inner] != source[inner]).any(axis=-1).mean() > 0.9


def test_inpaint_without_a_mask_says_what_is_missing(browser: Any, runtime: Runtime, tmp_path: Path) -> None:
    from runtime.ui.strings import text

    page = _open(browser, runtime, "zh-CN")
    try:
        _source(tmp_path / "source.png")
        _tab(page, "图生图")
        page.get_by_role("tab", name="局部重绘", exact=True).click()
        page.locator("#img2maskimg input[type=file]").first.set_input_files(str(tmp_path / "source.png"))
        page.get_by_role("button", name="Brush", exact=True).wait_for()
        page.locator("#img2img_generate").click()  # the picture is there, no stroke painted
        toast = page.locator(".toast-body").first
        toast.wait_for(timeout=GENERATE_TIMEOUT_MS)
        # the runtime's messages follow its own language, not the page's (issue 17 item 5)
        assert toast.inner_text().splitlines()[-1] in (text("need_mask", "zh"), text("need_mask", "en"))
    finally:
        page.context.close()
