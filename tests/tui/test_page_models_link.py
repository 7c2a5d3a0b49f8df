"""模型管理's "paste a link" field: a Civitai link lands in its folder with its metadata; a 401 says where a token is."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from textual.widgets import Input, Select

from bootstrap.layout import Bundle
from launcher import config
from launcher.tui.app import YijianApp
from launcher.tui.pages.models import ModelsPage
from tests.support.civitai_endpoint import PNG_1X1, CivitaiEndpoint
from tests.support.fake_models import SD15_LORA, write_safetensors
from tests.tui.conftest import SNAPSHOT_SIZE
from tests.tui.test_page_models import download_ended, open_models, static

pytestmark = pytest.mark.usefixtures("fixed_status")

TOKEN = "tui-c1v1ta1-t0ken-42"


@pytest.fixture
def lora(tmp_path: Path) -> bytes:
    return write_safetensors(tmp_path / "l.safetensors", SD15_LORA).read_bytes()


async def test_a_pasted_civitai_link_downloads_into_lora_with_its_card(
    tui_bundle: Bundle, civitai_endpoint: CivitaiEndpoint, lora: bytes
) -> None:
    civitai_endpoint.token = TOKEN
    civitai_endpoint.add_model(model_id=11, version_id=111, kind="LORA", base_model="SD 1.5",
                               files={"neon.safetensors": lora}, trained_words=["neonstyle"])  # fmt: skip
    config.apply(tui_bundle, [("mirrors.civitai", civitai_endpoint.url), ("downloads.civitai_token", TOKEN)])
    app = YijianApp(tui_bundle, "en")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot, "models-catalog")
        assert "Civitai" in str(app.query_one("#models-link", Input).placeholder)
        assert await pilot.click("#models-link-go")  # nothing pasted yet: nothing starts
        assert app.query_one(ModelsPage).download is None
        app.query_one("#models-link", Input).value = "https://civitai.com/models/11?modelVersionId=111"
        assert await pilot.click("#models-link-go")
        await download_ended(app, pilot)
        status = static(app, "#models-dl-status")
        target = tui_bundle.models_dir / "Lora" / "neon.safetensors"
        assert f"✓ Saved, sha256 verified: {target}" in status, status
        assert f"sha256 {hashlib.sha256(lora).hexdigest()}" in status
        assert target.read_bytes() == lora
        assert (tui_bundle.models_dir / "Lora" / "neon.preview.png").read_bytes() == PNG_1X1
        assert "neonstyle" in (tui_bundle.models_dir / "Lora" / "neon.json").read_text(encoding="utf-8")
        assert TOKEN not in status


async def test_a_link_without_its_token_says_where_to_get_one_and_the_type_can_be_chosen(
    tui_bundle: Bundle, civitai_endpoint: CivitaiEndpoint, lora: bytes
) -> None:
    civitai_endpoint.token = TOKEN
    civitai_endpoint.add_model(model_id=12, version_id=121, files={"x.safetensors": lora})
    config.apply(tui_bundle, [("mirrors.civitai", civitai_endpoint.url)])
    app = YijianApp(tui_bundle, "zh")
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await open_models(app, pilot, "models-catalog")
        app.query_one("#models-link-type", Select).value = "embedding"
        field = app.query_one("#models-link", Input)
        field.value = "civitai:12@121"
        field.focus()
        await pilot.press("enter")
        await download_ended(app, pilot)
        status = static(app, "#models-dl-status")
        assert "✗ [MODEL_TOKEN_NEEDED]" in status and "https://civitai.com/user/account" in status, status
        assert "令牌" in status
        assert not app.query_one("#models-link-go").disabled  # usable again
        config.apply(tui_bundle, [("downloads.civitai_token", TOKEN)])
        await pilot.press("enter")
        await download_ended(app, pilot)
        assert (tui_bundle.models_dir / "embeddings" / "x.safetensors").read_bytes() == lora
