"""A1111 1.10 API compatibility, measured from outside: its core route list and every call of ``webuiapi``.

Shared by ``tests/functional/test_webuiapi.py`` (which fails on any call that
neither works nor answers an honest not-yet error) and
``benchmarks/a1111_compat.py`` (which prints the counts).  The runtime is
``python -m runtime --demo`` in a process of its own, driven by the PyPI
client ``webuiapi`` exactly as users' scripts drive A1111.

Each call ends in one of:

* ``works``: it did what A1111 does (checked by a small assertion each);
* ``honest``: it asked for a feature Yijian does not have yet and got A1111's
  error shape with 501 (``FEATURE_NOT_AVAILABLE``) or, for a script or
  extension we do not have, 422 (``SCRIPT_NOT_FOUND``), as A1111 answers;
* ``absent``: a route of a third-party extension or one A1111 1.10 removed,
  which A1111 without that extension answers 404 too;
* ``failing``: anything else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.child_process import stop, wait_for
from tests.support.hermetic import REPO
from tests.support.httpbase import free_port

# A1111 1.10's modules/api/api.py: every route it adds (the last three only with --api-server-stop), and the two
# of the built-in Lora extension.
A1111_CORE_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/sdapi/v1/txt2img"), ("POST", "/sdapi/v1/img2img"), ("POST", "/sdapi/v1/extra-single-image"),
    ("POST", "/sdapi/v1/extra-batch-images"), ("POST", "/sdapi/v1/png-info"), ("GET", "/sdapi/v1/progress"),
    ("POST", "/sdapi/v1/interrogate"), ("POST", "/sdapi/v1/interrupt"), ("POST", "/sdapi/v1/skip"),
    ("GET", "/sdapi/v1/options"), ("POST", "/sdapi/v1/options"), ("GET", "/sdapi/v1/cmd-flags"),
    ("GET", "/sdapi/v1/samplers"), ("GET", "/sdapi/v1/schedulers"), ("GET", "/sdapi/v1/upscalers"),
    ("GET", "/sdapi/v1/latent-upscale-modes"), ("GET", "/sdapi/v1/sd-models"), ("GET", "/sdapi/v1/sd-vae"),
    ("GET", "/sdapi/v1/hypernetworks"), ("GET", "/sdapi/v1/face-restorers"), ("GET", "/sdapi/v1/realesrgan-models"),
    ("GET", "/sdapi/v1/prompt-styles"), ("GET", "/sdapi/v1/embeddings"), ("POST", "/sdapi/v1/refresh-embeddings"),
    ("POST", "/sdapi/v1/refresh-checkpoints"), ("POST", "/sdapi/v1/refresh-vae"),
    ("POST", "/sdapi/v1/create/embedding"), ("POST", "/sdapi/v1/create/hypernetwork"),
    ("POST", "/sdapi/v1/train/embedding"), ("POST", "/sdapi/v1/train/hypernetwork"), ("GET", "/sdapi/v1/memory"),
    ("POST", "/sdapi/v1/unload-checkpoint"), ("POST", "/sdapi/v1/reload-checkpoint"), ("GET", "/sdapi/v1/scripts"),
    ("GET", "/sdapi/v1/script-info"), ("GET", "/sdapi/v1/extensions"),
    ("GET", "/sdapi/v1/loras"), ("POST", "/sdapi/v1/refresh-loras"),
)  # fmt: skip
A1111_SERVER_ROUTES = (("POST", "/sdapi/v1/server-kill"), ("POST", "/sdapi/v1/server-restart"),
                       ("POST", "/sdapi/v1/server-stop"))  # fmt: skip

READY = "Running on local URL:  http://127.0.0.1:{port}"
STYLES_CSV = 'name,prompt,negative_prompt\n"cinematic","{prompt}, cinematic lighting","blurry"\n"flat",,"lowres"\n'


@contextmanager
def demo_runtime(root: Path, extra_args: tuple[str, ...] = ()) -> Iterator[int]:
    """``python -m runtime --demo`` over a bundle at ``root`` (with a styles.csv), on a free port."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "styles.csv").write_text(STYLES_CSV, encoding="utf-8")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("COMMANDLINE_ARGS", None)
    proc = subprocess.Popen([sys.executable, "-m", "runtime", "--demo", "--no-browser", "--port", str(port),
                             "--root", str(root), *extra_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=str(REPO), start_new_session=True)  # fmt: skip
    try:
        wait_for(proc, READY.format(port=port))
        yield port
    finally:
        stop(proc)


def routes_present(port: int) -> set[tuple[str, str]]:
    """(method, path) of every route the runtime's OpenAPI document lists."""
    import json

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    doc = json.load(opener.open(f"http://127.0.0.1:{port}/openapi.json", timeout=60))
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


# --- the webuiapi calls -------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    call: str
    kind: str  # works | honest | absent | failing
    detail: str = ""


def _png(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (64, 64)) -> Any:
    from PIL import Image

    return Image.new("RGB", size, color)


def _status_of(error: BaseException) -> tuple[int | None, str]:
    """webuiapi raises RuntimeError(status, text) for a non-200 answer; other errors have no status."""
    args = getattr(error, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return args[0], str(args[1])
    response = getattr(error, "response", None)
    if response is not None:
        return int(response.status_code), str(response.text)
    return None, f"{type(error).__name__}: {error}"


def _honest(status: int | None, text: str) -> bool:
    return (status == 501 and "FEATURE_NOT_AVAILABLE" in text) or (status == 422 and "SCRIPT_NOT_FOUND" in text)


def small() -> dict[str, Any]:
    """A tiny generation; a new ``alwayson_scripts`` each time: webuiapi adds ControlNet's arguments into the
    dict its own default holds, so after one call with ControlNet units every later call would carry them."""
    return {"steps": 2, "width": 64, "height": 64, "seed": 7, "alwayson_scripts": {}}


def calls(api: Any) -> list[tuple[str, str, Callable[[], bool]]]:
    """(name, expectation, call): the call returns True when its result is what A1111 gives.

    ``expectation`` is ``works``, ``honest`` (a feature named in issue 16 as not yet here) or ``absent`` (an
    extension's route or one A1111 1.10 no longer has).
    """
    import webuiapi

    def txt2img(**kw: Any) -> Callable[[], bool]:
        return lambda: bool(api.txt2img(prompt="a cat", **{**small(), **kw}).images)

    def img2img_mask() -> bool:
        # inpaint the left half (whole picture, no blur): the right half keeps every pixel, as A1111 pastes the
        # original back over what the mask leaves out, and the left half is repainted
        from PIL import Image

        init = _png((30, 160, 90))
        mask = _png((0, 0, 0))
        mask.paste(Image.new("RGB", (32, 64), (255, 255, 255)), (0, 0))
        out = api.img2img(images=[init], mask_image=mask, inpaint_full_res=False, mask_blur=0, prompt="x",
                          denoising_strength=0.9, **small()).image.convert("RGB")  # fmt: skip
        right = (32, 0, 64, 64)
        return bool(out.crop(right).tobytes() == init.crop(right).tobytes()
                    and out.crop((0, 0, 32, 64)).tobytes() != init.crop((0, 0, 32, 64)).tobytes())  # fmt: skip

    def controlnet() -> bool:
        # a client picks a model the server lists, as the extension's clients do; the detected map comes last
        model = api.controlnet_model_list()[0]
        unit = webuiapi.ControlNetUnit(image=_png(), module="canny", model=model, processor_res=64)
        return len(api.txt2img(prompt="a cat", controlnet_units=[unit], **small()).images) == 2

    def grid() -> bool:
        r = api.txt2img(prompt="a cat", batch_size=2, save_images=True, **small())
        return len(r.images) == 3 and r.images[0].size == (128, 64) and r.info["index_of_first_image"] == 1

    def styles() -> bool:
        r = api.txt2img(prompt="a cat", styles=["cinematic"], **small())
        return bool(r.info["prompt"] == "a cat, cinematic lighting" and r.info["negative_prompt"] == "blurry")

    def variation() -> bool:
        r = api.txt2img(prompt="a cat", subseed=99, subseed_strength=0.5, batch_size=2, **small())
        return bool(r.info["all_seeds"] == [7, 7] and r.info["all_subseeds"] == [99, 100])

    def set_options() -> bool:
        api.set_options({"CLIP_stop_at_last_layers": 2})
        ok = api.get_options()["CLIP_stop_at_last_layers"] == 2
        api.set_options({"CLIP_stop_at_last_layers": 1})
        return bool(ok)

    def png_info() -> bool:
        image = api.txt2img(prompt="a cat", **small()).image
        r = api.png_info(image)
        return "parameters" not in r.json["items"] and r.json["info"].startswith("a cat")

    def progress() -> bool:
        p = api.get_progress()
        return set(p) >= {"progress", "eta_relative", "state", "current_image"} and int(
            p["state"]["job_timestamp"][:4]) >= 2024  # fmt: skip

    def current_model() -> bool:
        return bool(api.util_get_current_model() in api.util_get_model_names())

    def set_model() -> bool:
        api.util_set_model(api.util_get_model_names()[0])
        return True

    return [
        ("txt2img", "works", txt2img()),
        ("txt2img(enable_hr, hr_prompt, hr_sampler_name)", "works",
         txt2img(enable_hr=True, hr_scale=1.5, hr_prompt="a dog", hr_sampler_name="Euler", denoising_strength=0.5)),
        ("txt2img(styles)", "works", styles),
        ("txt2img(subseed, subseed_strength)", "works", variation),
        ("txt2img(save_images: grid first)", "works", grid),
        ("txt2img(steps=151)", "works", txt2img(steps=151, width=64, height=64)),
        ("txt2img(restore_faces)", "honest", txt2img(restore_faces=True)),
        ("txt2img(controlnet_units)", "works", controlnet),
        ("txt2img(script_name)", "honest", txt2img(script_name="X/Y/Z plot")),
        ("img2img", "works", lambda: bool(api.img2img(images=[_png()], prompt="x", **small()).images)),
        ("img2img(mask_image)", "works", img2img_mask),
        ("extra_single_image", "works", lambda: bool(api.extra_single_image(image=_png(), upscaler_1="Lanczos").image)),
        ("extra_batch_images", "works",
         lambda: bool(api.extra_batch_images(images=[_png(), _png()], upscaler_1="Lanczos").images)),
        ("png_info", "works", png_info),
        ("interrogate", "honest", lambda: bool(api.interrogate(_png()).info)),
        ("interrupt", "works", lambda: api.interrupt() == {}),
        ("skip", "works", lambda: api.skip() is None),
        ("get_options", "works", lambda: len(api.get_options()) > 250),
        ("set_options", "works", set_options),
        ("get_cmd_flags", "works", lambda: "api" in api.get_cmd_flags()),
        ("get_progress", "works", progress),
        ("get_samplers", "works", lambda: any(s["name"] == "Euler a" for s in api.get_samplers())),
        ("get_schedulers", "works", lambda: bool(api.get_schedulers())),
        ("get_sd_vae", "works", lambda: isinstance(api.get_sd_vae(), list)),
        ("get_upscalers", "works", lambda: any(u["name"] == "Lanczos" for u in api.get_upscalers())),
        ("get_latent_upscale_modes", "works", lambda: {"name": "Latent"} in api.get_latent_upscale_modes()),
        ("get_loras", "works", lambda: isinstance(api.get_loras(), list)),
        ("get_sd_models", "works", lambda: len(api.get_sd_models()) >= 1),
        ("get_hypernetworks", "works", lambda: api.get_hypernetworks() == []),
        ("get_face_restorers", "works", lambda: api.get_face_restorers() == []),
        ("get_realesrgan_models", "works", lambda: isinstance(api.get_realesrgan_models(), list)),
        ("get_prompt_styles", "works", lambda: [s["name"] for s in api.get_prompt_styles()] == ["cinematic", "flat"]),
        ("refresh_checkpoints", "works", lambda: api.refresh_checkpoints() is None),
        ("get_scripts", "works", lambda: api.get_scripts() == {"txt2img": [], "img2img": []}),
        ("get_embeddings", "works", lambda: set(api.get_embeddings()) == {"loaded", "skipped"}),
        ("get_memory", "works", lambda: set(api.get_memory()) == {"ram", "cuda"}),
        ("util_get_model_names", "works", lambda: bool(api.util_get_model_names())),
        ("util_get_sampler_names", "works", lambda: "Euler a" in api.util_get_sampler_names()),
        ("util_get_scheduler_names", "works", lambda: bool(api.util_get_scheduler_names())),
        ("util_get_current_model", "works", current_model),
        ("util_set_model", "works", set_model),
        ("util_wait_for_ready", "works", lambda: api.util_wait_for_ready(check_interval=0.1) is None),
        ("custom_get(sdapi/v1/sd-models)", "works", lambda: bool(api.custom_get("sdapi/v1/sd-models"))),
        ("custom_post(sdapi/v1/txt2img)", "works",
         lambda: bool(api.custom_post("sdapi/v1/txt2img", {"prompt": "x", **small()}).images)),
        ("get_artist_categories", "absent", lambda: isinstance(api.get_artist_categories(), list)),
        ("get_artists", "absent", lambda: isinstance(api.get_artists(), list)),
        ("list_prompt_gen_models", "absent", lambda: bool(api.list_prompt_gen_models())),
        ("controlnet_version", "works", lambda: bool(api.controlnet_version())),
        ("controlnet_model_list", "works", lambda: bool(api.controlnet_model_list())),
        ("controlnet_module_list", "works", lambda: "canny" in api.controlnet_module_list()),
        ("controlnet_detect", "works", lambda: bool(api.controlnet_detect([_png()], module="canny").images)),
        # webuiapi's interfaces to third-party extensions
        ("ModelKeywordInterface.get_keywords", "absent", lambda: bool(webuiapi.ModelKeywordInterface(api).get_keywords())),
        ("InstructPix2PixInterface.img2img", "absent",
         lambda: bool(webuiapi.InstructPix2PixInterface(api).img2img(images=[_png()], prompt="x").images)),
        ("RemBGInterface.rembg", "absent", lambda: bool(webuiapi.RemBGInterface(api).rembg(input_image=_png()).image)),
        ("ControlNetInterface.model_list", "works",
         lambda: bool(webuiapi.ControlNetInterface(api, show_deprecation_warning=False).model_list())),
        ("SegmentAnythingInterface.heartbeat", "absent", lambda: webuiapi.SegmentAnythingInterface(api).heartbeat().get("msg") == "Success!"),
        ("TaggerInterface.tagger_interrogators", "absent",
         lambda: "models" in webuiapi.TaggerInterface(api).tagger_interrogators()),
    ]  # fmt: skip


def run_calls(port: int) -> list[Outcome]:
    import requests
    import webuiapi

    api = webuiapi.WebUIApi(host="127.0.0.1", port=port, sampler="Euler a", steps=2)
    api.session.trust_env = False  # a proxy in the shell must not see loopback calls
    outcomes = []
    for name, expected, call in calls(api):
        try:
            ok = call()
            if not ok and expected == "absent":  # answered, but not with what the removed/extension route gave
                outcomes.append(Outcome(name, "absent", "no such route"))
            else:
                outcomes.append(Outcome(name, "works" if ok else "failing", "" if ok else "unexpected result"))
        except Exception as e:  # the client's own error for the answer it got: classified below
            status, text = _status_of(e)
            if _honest(status, text):
                outcomes.append(Outcome(name, "honest", f"{status}"))
            elif expected == "absent" and (
                status == 404 or isinstance(e, ValueError | KeyError | requests.JSONDecodeError)
            ):
                outcomes.append(Outcome(name, "absent", f"{status or type(e).__name__}"))
            else:
                outcomes.append(Outcome(name, "failing", f"{status}: {text[:200]}"))
    return outcomes
