"""A1111 1.10's routes and fields on ``/sdapi/v1`` (issue 16 item 3), over the tiny model in-process.

Shapes and rules are A1111's (modules/api/api.py, models.py, processing.py, styles.py, rng.py, images.py);
the process-level run with the ``webuiapi`` client is tests/functional/test_webuiapi.py.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runtime.engine import Engine
from tests.support.a1111_compat import A1111_CORE_ROUTES

SMALL = {"steps": 2, "width": 64, "height": 64}


def image_of(b64: str) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


def info_of(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return dict(json.loads(r.json()["info"]))


def test_every_core_route_but_cmd_flags_is_served(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    served = {(method.upper(), path) for path, item in paths.items() for method in item}
    # /cmd-flags comes from the flags table (runtime/api/cmd_flags.py), registered in build_router
    assert [r for r in A1111_CORE_ROUTES if r not in served and r[1] != "/sdapi/v1/cmd-flags"] == []


def test_not_yet_features_answer_501_in_a1111s_error_shape(client: TestClient) -> None:
    for path, body in [("/interrogate", {"image": "", "model": "clip"}), ("/extra-batch-images", {"gfpgan_visibility": 1}),
                       ("/create/embedding", {"name": "x"}), ("/train/hypernetwork", {})]:  # fmt: skip
        r = client.post("/sdapi/v1" + path, json=body)
        assert r.status_code == 501, (path, r.text)
        assert {"error", "detail", "body", "errors"} <= set(r.json()) and r.json()["code"] == "FEATURE_NOT_AVAILABLE"
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "restore_faces": True, **SMALL})
    assert r.status_code == 501 and "face restoration" in r.json()["detail"]


def test_scripts_we_do_not_have_are_422_as_in_a1111(client: TestClient) -> None:
    assert client.get("/sdapi/v1/scripts").json() == {"txt2img": [], "img2img": []}
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "script_name": "X/Y/Z plot", **SMALL})
    assert r.status_code == 422 and "X/Y/Z plot" in r.json()["detail"]
    r = client.post(
        "/sdapi/v1/txt2img", json={"prompt": "x", "alwayson_scripts": {"ADetailer": {"args": []}}, **SMALL}
    )
    assert r.status_code == 422 and "ADetailer" in r.json()["detail"]
    r = client.post(  # ControlNet is built in: no unit, no change
        "/sdapi/v1/txt2img", json={"prompt": "x", "alwayson_scripts": {"ControlNet": {"args": []}}, **SMALL}
    )
    assert r.status_code == 200, r.text
    assert client.post("/sdapi/v1/txt2img", json={"prompt": "x", "script_name": "", **SMALL}).status_code == 200


def test_lists_of_what_we_have(client: TestClient, engine: Engine) -> None:
    assert client.get("/sdapi/v1/face-restorers").json() == []
    assert client.get("/sdapi/v1/hypernetworks").json() == []
    assert client.get("/sdapi/v1/extensions").json() == []
    emb = client.get("/sdapi/v1/embeddings").json()
    assert emb["loaded"]["tinyemb"]["vectors"] >= 1 and emb["loaded"]["tinyemb"]["shape"] == 32  # the tiny CLIP width
    memory = client.get("/sdapi/v1/memory").json()
    assert memory["ram"]["total"] > memory["ram"]["used"] > 0 and memory["cuda"] == {"error": "unavailable"}
    (engine.bundle.root / "models" / "ESRGAN" / "4x-Tiny.pth").write_bytes(b"\0")
    assert {"name": "4x-Tiny", "path": str(engine.bundle.root / "models" / "ESRGAN" / "4x-Tiny.pth"),
            "scale": 4} in client.get("/sdapi/v1/realesrgan-models").json()  # fmt: skip
    (engine.bundle.root / "models" / "ESRGAN" / "4x-Tiny.pth").unlink()


def test_options_have_a1111s_keys_and_refuse_what_cannot_be_set(client: TestClient, engine: Engine) -> None:
    opts = client.get("/sdapi/v1/options").json()
    assert len(opts) > 250 and opts["emphasis"] == "Original" and opts["samples_format"] == "png"
    assert opts["sd_model_checkpoint"] == engine.model.checkpoint.title  # type: ignore[union-attr]
    for body, key in [({"samples_format": "jpg"}, "samples_format"), ({"no_such_option": 1}, "no_such_option"),
                      ({"outdir_txt2img_samples": "/tmp/x"}, "outdir_txt2img_samples"),
                      ({"emphasis": "Loud"}, "emphasis"), ({"use_old_scheduling": "yes"}, "use_old_scheduling")]:  # fmt: skip
        r = client.post("/sdapi/v1/options", json=body)
        assert r.status_code == 422 and key in r.json()["detail"] and r.json()["code"] == "OPTION_NOT_SETTABLE", r.text
    assert client.post("/sdapi/v1/options", json={"samples_format": "png"}).status_code == 200  # the same value


def test_options_apply_and_survive_a_restart(client: TestClient, engine: Engine) -> None:
    from runtime.webui_settings import WebuiSettings

    prompt = {"prompt": "a (cat:1.3)", "seed": 3, **SMALL}
    before = info_of(client.post("/sdapi/v1/txt2img", json=prompt))
    r = client.post("/sdapi/v1/options", json={"emphasis": "Ignore", "gallery_height": "600px"})
    assert r.status_code == 200 and r.json() is None
    after = info_of(client.post("/sdapi/v1/txt2img", json=prompt))
    assert "Emphasis: Ignore" in after["infotexts"][0] and "Emphasis" not in before["infotexts"][0]
    saved = WebuiSettings.for_bundle(engine.bundle.root)
    assert saved.get("emphasis") == "Ignore" and saved.get("gallery_height") == "600px"
    client.post("/sdapi/v1/options", json={"emphasis": "Original", "gallery_height": ""})
    assert WebuiSettings.for_bundle(engine.bundle.root).snapshot()["emphasis"] == "Original"


def test_override_settings_apply_to_one_request_unless_kept(client: TestClient, engine: Engine) -> None:
    body = {"prompt": "x", "seed": 1, **SMALL}
    info = info_of(
        client.post("/sdapi/v1/txt2img", json={**body, "override_settings": {"CLIP_stop_at_last_layers": 2}})
    )
    assert info["clip_skip"] == 2 and engine.clip_skip == 1
    r = client.post("/sdapi/v1/txt2img", json={**body, "override_settings": {"eta_noise_seed_delta": 31337}})
    assert r.status_code == 422 and "eta_noise_seed_delta" in r.json()["detail"]
    client.post("/sdapi/v1/txt2img", json={**body, "override_settings": {"CLIP_stop_at_last_layers": 2},
                                           "override_settings_restore_afterwards": False})  # fmt: skip
    assert engine.clip_skip == 2 and client.get("/sdapi/v1/options").json()["CLIP_stop_at_last_layers"] == 2
    client.post("/sdapi/v1/options", json={"CLIP_stop_at_last_layers": 1})


def test_styles_from_an_a1111_styles_csv(client: TestClient, engine: Engine) -> None:
    (engine.bundle.root / "styles.csv").write_text(
        'name,prompt,negative_prompt\n"cine","{prompt}, cinematic","blurry"\nplain,"oil painting",\n', encoding="utf-8"
    )
    styles = client.get("/sdapi/v1/prompt-styles").json()
    assert styles == [{"name": "cine", "prompt": "{prompt}, cinematic", "negative_prompt": "blurry"},
                      {"name": "plain", "prompt": "oil painting", "negative_prompt": ""}]  # fmt: skip
    info = info_of(client.post("/sdapi/v1/txt2img", json={"prompt": "a cat", "negative_prompt": "ugly",
                                                          "styles": ["cine", "plain"], **SMALL}))  # fmt: skip
    # A1111: {prompt} takes the prompt's place; without it the style is appended with ", "
    assert info["prompt"] == "a cat, cinematic, oil painting" and info["negative_prompt"] == "ugly, blurry"
    assert info["styles"] == ["cine", "plain"]
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "styles": ["nope"], **SMALL})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "styles[0]"]


def test_a_full_variation_strength_is_the_subseeds_image(client: TestClient) -> None:
    base = {"prompt": "a cat", "sampler_name": "Euler", **SMALL}
    plain = client.post("/sdapi/v1/txt2img", json={**base, "seed": 21}).json()
    full = client.post("/sdapi/v1/txt2img", json={**base, "seed": 5, "subseed": 21, "subseed_strength": 1.0})
    none = client.post("/sdapi/v1/txt2img", json={**base, "seed": 21, "subseed": 8, "subseed_strength": 0.0})
    half = client.post("/sdapi/v1/txt2img", json={**base, "seed": 5, "subseed": 21, "subseed_strength": 0.5})
    same = image_of(plain["images"][0]).tobytes()
    assert image_of(full.json()["images"][0]).tobytes() == same
    assert image_of(none.json()["images"][0]).tobytes() == same
    assert image_of(half.json()["images"][0]).tobytes() != same
    info = info_of(client.post("/sdapi/v1/txt2img", json={**base, "seed": 5, "subseed": 9, "subseed_strength": 0.3,
                                                          "batch_size": 2}))  # fmt: skip
    # A1111's numbering with a variation strength: one seed, subseeds counting up
    assert info["all_seeds"] == [5, 5] and info["all_subseeds"] == [9, 10] and info["subseed_strength"] == 0.3
    assert "Variation seed: 9, Variation seed strength: 0.3" in info["infotexts"][0]


def test_img2img_variation_seeds_move_the_added_noise_as_in_txt2img(client: TestClient) -> None:
    """A1111's img2img adds its variation noise to the init latents: strength 1 is the subseed's image, 0.5 neither;
    with a mask (inpainting) it is refused by name rather than ignored."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 120, 200)).save(buf, format="PNG")
    init = base64.b64encode(buf.getvalue()).decode()
    base = {"prompt": "a cat", "sampler_name": "Euler", "init_images": [init], "denoising_strength": 0.8, **SMALL}
    import numpy as np

    def pixels(r: Any) -> Any:
        return np.asarray(image_of(r.json()["images"][0]).convert("RGB"), dtype=np.int16)

    # the added noise is the seed's first draw, as txt2img's: seed 21 alone ~ any seed with subseed 21 at 1.0 (only
    # the VAE's sampling of the init image still follows the seed: a small difference)
    plain = pixels(client.post("/sdapi/v1/img2img", json={**base, "seed": 21}))
    full = client.post("/sdapi/v1/img2img", json={**base, "seed": 5, "subseed": 21, "subseed_strength": 1.0})
    assert full.status_code == 200, full.text
    other = pixels(client.post("/sdapi/v1/img2img", json={**base, "seed": 5}))
    half = client.post("/sdapi/v1/img2img", json={**base, "seed": 5, "subseed": 21, "subseed_strength": 0.5})
    def apart(a: Any, b: Any) -> float:
        return float(np.abs(a - b).mean())

    near = apart(pixels(full), plain)
    assert near * 4 < apart(other, plain)
    assert apart(pixels(half), plain) > near * 2 and apart(pixels(half), other) > near * 2
    assert "Variation seed: 21" in info_of(half)["infotexts"][0]
    masked = client.post("/sdapi/v1/img2img", json={**base, "mask": init, "subseed_strength": 0.5})
    assert masked.status_code == 422 and "subseed_strength" in masked.text


def test_slerp_and_seed_resize_follow_a1111() -> None:
    import torch

    from runtime.noise import slerp, variation_noise

    low, high = torch.randn(4, 8, 8), torch.randn(4, 8, 8)
    assert torch.allclose(slerp(0.0, low, high), low, atol=1e-5)
    assert torch.allclose(slerp(1.0, low, high), high, atol=1e-5)
    assert torch.equal(slerp(0.25, low, low), low * 0.25 + low * 0.75)  # A1111's fallback for parallel noise
    small = variation_noise([3], [0], 0.0, (4, 8, 8), "cpu")
    wide = variation_noise([3], [0], 0.0, (4, 8, 16), "cpu", resize_from=(64, 64))
    assert torch.equal(wide[0, :, :, 4:12], small[0])  # the 64x64 noise, centred in the 128x64 one
    narrow = variation_noise([3], [0], 0.0, (4, 8, 4), "cpu", resize_from=(64, 64))
    assert torch.equal(narrow[0], small[0, :, :, 2:6])  # cut from the middle when the new size is smaller


def test_grid_first_and_saved_when_a_batch_is_saved(client: TestClient, engine: Engine) -> None:
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "grid", "seed": 4, "batch_size": 3, "save_images": True,
                                               **SMALL})  # fmt: skip
    info = info_of(r)
    images = [image_of(b) for b in r.json()["images"]]
    assert len(images) == 4 and info["index_of_first_image"] == 1
    assert images[0].size == (128, 128)  # A1111: round(sqrt(3)) = 2 rows of 2
    assert images[0].crop((64, 0, 128, 64)).tobytes() == images[2].tobytes()
    grids = list((engine.bundle.root / "outputs" / "txt2img-grids" / datetime.now().date().isoformat()).iterdir())
    assert [g.name for g in grids] == ["grid-0000.png"]
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "grid", "seed": 4, "batch_size": 3, **SMALL})
    assert len(r.json()["images"]) == 3  # A1111's API makes no grid unless the images are saved


def test_hires_prompt_and_sampler(client: TestClient) -> None:
    body = {"prompt": "a cat", "seed": 2, "enable_hr": True, "hr_scale": 1.5, "denoising_strength": 0.5, **SMALL}
    plain = info_of(client.post("/sdapi/v1/txt2img", json=body))
    r = client.post("/sdapi/v1/txt2img", json={**body, "hr_prompt": "a dog", "hr_sampler_name": "DPM++ 2M",
                                               "hr_scheduler": "Karras"})  # fmt: skip
    text = info_of(r)["infotexts"][0]
    assert "Hires prompt: a dog" in text and "Hires sampler: DPM++ 2M" in text and "Hires schedule type: Karras" in text
    assert r.json()["images"][0] != client.post("/sdapi/v1/txt2img", json=body).json()["images"][0]
    assert "Hires prompt" not in plain["infotexts"][0]
    # a misspelled hires sampler falls back to the default with a warning, as the first pass's does (A1111 1.10's
    # get_sampler_and_scheduler); the infotext names the sampler that ran
    r = client.post("/sdapi/v1/txt2img", json={**body, "hr_sampler_name": "Eulr"})
    assert r.status_code == 200, r.text
    assert "Eulr" not in info_of(r)["infotexts"][0]


def test_steps_have_no_150_ceiling(client: TestClient) -> None:
    from runtime.request import GenerationRequest

    GenerationRequest(steps=400).check()
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", **SMALL, "steps": 1001})
    assert r.status_code == 422 and "1000" in r.json()["detail"][0]["msg"]


def test_progress_has_a_real_timestamp_and_png_info_no_repeat(client: TestClient) -> None:
    client.post("/sdapi/v1/txt2img", json={"prompt": "x", **SMALL})
    state = client.get("/sdapi/v1/progress").json()["state"]
    assert abs(datetime.strptime(state["job_timestamp"], "%Y%m%d%H%M%S") - datetime.now()).total_seconds() < 600
    png = client.post("/sdapi/v1/txt2img", json={"prompt": "png", **SMALL}).json()["images"][0]
    got = client.post("/sdapi/v1/png-info", json={"image": png}).json()
    assert got["info"].startswith("png") and "parameters" not in got["items"]


def test_live_preview_is_a1111s_cheap_approximation() -> None:
    import torch

    from runtime.preview import CHEAP_SD, cheap_preview
    from runtime.progress import Progress

    latent = torch.zeros(4, 2, 3)
    latent[0, 1, 2] = 1.0  # one pixel: channel 0 only
    image = cheap_preview(latent, "sd15")
    assert image is not None and image.size == (3, 2)
    want = tuple(round(255 * min(1.0, max(0.0, c * 0.5 + 0.5)) - 0.5 + 0.5) for c in CHEAP_SD[0])
    assert all(abs(a - b) <= 1 for a, b in zip(image.getpixel((2, 1)), want, strict=True))  # type: ignore[arg-type]
    assert image.getpixel((0, 0)) == (127, 127, 127)
    progress = Progress()
    progress.preview_every = 2
    progress.begin("txt2img", 1)
    progress.batch(0, 0, 5)
    progress.preview(1, torch.ones(1, 4, 2, 2))
    assert progress.preview_latents() is None  # A1111: a new preview every N steps
    progress.preview(2, torch.ones(1, 4, 2, 2))
    assert progress.preview_latents() is not None


def test_progress_shows_the_preview_while_sampling(client: TestClient, engine: Engine) -> None:
    seen: list[dict[str, Any]] = []
    step = engine.progress.preview

    def spy(done: int, latents: Any) -> None:
        step(done, latents)
        if done == 2 and not seen:
            seen.append(client.get("/sdapi/v1/progress").json())

    client.post("/sdapi/v1/options", json={"show_progress_every_n_steps": 1})
    engine.progress.preview = spy  # type: ignore[method-assign]
    try:
        client.post("/sdapi/v1/txt2img", json={"prompt": "x", **SMALL, "steps": 3})
    finally:
        del engine.progress.preview
        client.post("/sdapi/v1/options", json={"show_progress_every_n_steps": 10})
    assert seen and seen[0]["current_image"] and image_of(seen[0]["current_image"]).size == (8, 8)
    assert seen[0]["state"]["sampling_step"] == 2


def test_skip_ends_the_batch_and_goes_on(client: TestClient, engine: Engine) -> None:
    steps_seen: list[tuple[int, int]] = []
    step = engine.progress.step

    def spy(done: int) -> None:
        step(done)
        snap = engine.progress.snapshot()
        steps_seen.append((snap.job_no, done))
        if snap.job_no == 0 and done == 1:
            assert client.post("/sdapi/v1/skip").status_code == 200

    engine.progress.step = spy  # type: ignore[method-assign]
    try:
        r = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "n_iter": 2, **SMALL, "steps": 4})
    finally:
        del engine.progress.step
    assert len(r.json()["images"]) == 2  # the skipped batch's image is kept, as in A1111
    assert max(d for j, d in steps_seen if j == 0) == 1 and max(d for j, d in steps_seen if j == 1) == 4


def test_unload_and_reload_the_checkpoint(client: TestClient, engine: Engine) -> None:
    title = engine.model.checkpoint.title  # type: ignore[union-attr]
    assert client.post("/sdapi/v1/unload-checkpoint").status_code == 200 and engine.model is None
    assert client.post("/sdapi/v1/txt2img", json={"prompt": "x", **SMALL}).status_code == 503
    assert client.post("/sdapi/v1/reload-checkpoint").status_code == 200
    assert engine.model is not None and engine.model.checkpoint.title == title


def test_server_routes_only_with_api_server_stop(engine: Engine) -> None:
    from fastapi import FastAPI

    from runtime.api.context import ApiContext
    from runtime.api.routes import build_router

    plain = FastAPI()
    plain.include_router(build_router(engine, None))
    with TestClient(plain, base_url="http://127.0.0.1") as c:
        assert c.post("/sdapi/v1/server-stop").status_code == 404
    ctx = ApiContext.create(engine, server_stop=True)

    class FakeServer:
        should_exit = False
        force_exit = False

    ctx.control["server"] = server = FakeServer()
    app = FastAPI()
    app.include_router(build_router(engine, None, context=ctx))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.post("/sdapi/v1/server-restart").status_code == 501  # nothing here starts it again
        assert c.post("/sdapi/v1/server-stop").text == "Stopping." and server.should_exit and not server.force_exit


def test_demo_lists_the_model_its_options_name(tmp_path: Path) -> None:
    from bootstrap.layout import Bundle
    from runtime.options import parse
    from runtime.server import build_app

    demo = Engine(Bundle(tmp_path))
    demo.load_demo()
    with TestClient(build_app(demo, parse(["--no-browser", "--nowebui"], {})), base_url="http://127.0.0.1") as c:
        titles = [m["title"] for m in c.get("/sdapi/v1/sd-models").json()]
        assert titles == [c.get("/sdapi/v1/options").json()["sd_model_checkpoint"]] == ["demo-random-weights"]
        assert c.post("/sdapi/v1/options", json={"sd_model_checkpoint": "demo-random-weights"}).status_code == 200


@pytest.mark.parametrize(("rows", "count", "batch", "want"), [(-1, 2, 2, 1), (-1, 3, 3, 2), (-1, 5, 1, 2),
                                                              (0, 4, 2, 2), (3, 2, 1, 2)])  # fmt: skip
def test_grid_rows_are_a1111s(rows: int, count: int, batch: int, want: int) -> None:
    from runtime.outputs import GridSpec, grid_rows

    assert grid_rows(count, batch, GridSpec(rows=rows)) == want
    assert (
        grid_rows(6, 1, GridSpec(prevent_empty_spots=True)) == 2
        and grid_rows(7, 1, GridSpec(prevent_empty_spots=True)) == 1
    )


def test_extras_upscale_as_a1111(client: TestClient) -> None:
    from PIL import Image

    from runtime.api.images import encode_image

    source = Image.new("RGB", (50, 30), (10, 200, 90))
    b64 = encode_image(source)
    r = client.post("/sdapi/v1/extra-single-image", json={"image": b64, "upscaler_1": "Lanczos", "upscaling_resize": 2})
    assert r.status_code == 200, r.text
    assert image_of(r.json()["image"]).size == (96, 56)  # A1111's upscalers round the side down to a multiple of 8
    r = client.post("/sdapi/v1/extra-single-image", json={"image": b64, "upscaler_1": "Nearest", "resize_mode": 1,
                                                          "upscaling_resize_w": 64, "upscaling_resize_h": 64})  # fmt: skip
    assert image_of(r.json()["image"]).size == (64, 64)  # scaled to cover 64x64, then cut to it
    same = client.post("/sdapi/v1/extra-single-image", json={"image": b64}).json()["image"]
    assert image_of(same).tobytes() == source.tobytes()  # upscaler "None": nothing to do
    r = client.post("/sdapi/v1/extra-batch-images", json={"imageList": [{"data": b64, "name": "a"}] * 2,
                                                          "upscaler_1": "Lanczos"})  # fmt: skip
    assert [image_of(i).size for i in r.json()["images"]] == [(96, 56), (96, 56)]
    r = client.post("/sdapi/v1/extra-single-image", json={"image": b64, "upscaler_1": "No Such"})
    assert r.status_code in (404, 422) and "No Such" in r.text
