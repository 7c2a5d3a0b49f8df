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


def _source_tab(browser: Any, runtime: Runtime, locale: str, top: str, sub: str) -> Any:
    """A new page in ``locale`` on the img2img tab (named ``top``) and its source sub-tab ``sub``."""
    page = _open(browser, runtime, locale)
    _tab(page, top)
    page.get_by_role("tab", name=sub, exact=True).click()
    return page


def _stroke(page: Any, editor: str, picture: Path) -> None:
    """Upload ``picture`` into the image editor ``editor`` and paint a stroke across its middle (x 48..80, y 64)."""
    page.locator(f"#{editor} input[type=file]").first.set_input_files(str(picture))
    page.get_by_role("button", name="Brush", exact=True).wait_for()  # after an upload the brush is in hand
    page.wait_for_timeout(500)  # the canvas lays the picture out after the upload
    box = page.locator(f"#{editor} canvas").first.bounding_box()
    assert box is not None
    scale = min(box["width"], box["height"]) / SIZE * 0.999
    left = box["x"] + (box["width"] - SIZE * scale) / 2
    top = box["y"] + (box["height"] - SIZE * scale) / 2
    page.mouse.move(left + 48 * scale, top + 64 * scale)
    page.mouse.down()
    for x in range(48, 81, 4):
        page.mouse.move(left + x * scale, top + 64 * scale)
    page.mouse.up()


def _only_near_the_stroke(out: np.ndarray, source: np.ndarray) -> None:
    assert out.shape == source.shape
    far = np.ones((SIZE, SIZE), dtype=bool)
    far[24:104, 16:112] = False  # the stroke, its brush radius and the blur stay inside this box
    assert (out[far] == source[far]).all()
    assert (out[60:68, 52:76] != source[60:68, 52:76]).any(axis=-1).mean() > 0.5  # under the stroke: painted
    assert (out != source).any(axis=-1).sum() < SIZE * SIZE / 2


@pytest.mark.parametrize(
    ("locale", "top", "sub", "editor", "label", "strength"),
    [
        ("zh-CN", "图生图", "局部重绘", "img2maskimg", ("#img2img_mask_blur", "蒙版边缘模糊度"), 1),
        ("en-US", "img2img", "Inpaint sketch", "inpaint_sketch", ("#img2img_mask_alpha", "Mask transparency"), 0.5),
    ],
    ids=["inpaint-zh", "inpaint-sketch-en"],
)
def test_a_stroke_painted_in_the_editor_repaints_only_there(
    browser: Any, runtime: Runtime, shots: Path, tmp_path: Path, locale: str, top: str, sub: str, editor: str,
    label: tuple[str, str], strength: float,
) -> None:  # fmt: skip
    page = _source_tab(browser, runtime, locale, top, sub)
    try:
        source = _source(tmp_path / "source.png")
        assert page.locator(f"{label[0]} [data-testid=block-info]").inner_text().strip() == label[1]
        _stroke(page, editor, tmp_path / "source.png")
        page.screenshot(path=str(shots / f"{editor}-stroke-{locale}.png"), full_page=True)
        _settings(page)
        _set_number(page, "#img2img_denoising_strength input[type=number]", strength)  # type: ignore[arg-type]
        out, info = _generate(page, shots / f"{editor}-result-{locale}.png")
    finally:
        page.context.close()
    assert "Mask blur: 4" in info and f"Denoising strength: {strength}" in info
    _only_near_the_stroke(out, source)


def test_an_uploaded_mask_in_the_english_page_repaints_only_there(
    browser: Any, runtime: Runtime, shots: Path, tmp_path: Path
) -> None:
    from PIL import Image

    page = _source_tab(browser, runtime, "en-US", "img2img", "Inpaint upload")
    try:
        source = _source(tmp_path / "source.png")
        mask = Image.new("L", (SIZE, SIZE), 0)
        mask.paste(255, (40, 32, 96, 80))
        mask.save(tmp_path / "mask.png")
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

    page = _source_tab(browser, runtime, "zh-CN", "图生图", "局部重绘")
    try:
        _source(tmp_path / "source.png")
        page.locator("#img2maskimg input[type=file]").first.set_input_files(str(tmp_path / "source.png"))
        page.get_by_role("button", name="Brush", exact=True).wait_for()
        page.locator("#img2maskimg canvas").first.wait_for()
        said = ""
        for _ in range(30):  # a loaded machine can click before the upload reached the server: then it says so
            page.evaluate("document.querySelectorAll('.toast-body').forEach(t => t.remove())")  # only the new answer
            page.locator("#img2img_generate").click()  # the picture is there, no stroke painted
            toast = page.locator(".toast-body").first
            toast.wait_for(timeout=GENERATE_TIMEOUT_MS)
            said = toast.inner_text().splitlines()[-1]
            if said not in (text("need_image", "zh"), text("need_image", "en")):
                break
            page.wait_for_timeout(2000)
        # the runtime's messages follow its own language, not the page's (issue 17 item 5)
        assert said in (text("need_mask", "zh"), text("need_mask", "en"))
    finally:
        page.context.close()
