"""The Gradio Blocks: five tabs over one :class:`~runtime.engine.Engine`.

Handlers are small: they turn widget values into a
:class:`~runtime.request.GenerationRequest`, run the engine in a worker
thread while feeding Gradio's progress bar from the engine's progress, and
turn engine errors into a Gradio message, so an out-of-memory error or a bad
size leaves the page alive.  The gallery shows the saved files, so what a
user downloads carries its PNG info.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import gradio as gr

from bootstrap.errors import YijianError
from runtime import samplers, upscale
from runtime.engine import Engine, GenerationResult
from runtime.pnginfo import parse_parameters, read_parameters
from runtime.request import GenerationRequest
from runtime.ui import img2img as img2img_sources
from runtime.ui.strings import en, text, zh

I18N = gr.I18n(zh=zh(), en=en())


def _t(key: str) -> Any:
    return I18N(key)


def _run(engine: Engine, req: GenerationRequest, lang: str, progress: gr.Progress) -> GenerationResult:
    """Run the engine in a thread; feed the progress bar until it is done."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = engine.generate(req)
        except BaseException as e:  # handed to the UI thread below
            box["error"] = e

    thread = threading.Thread(target=work, name="generate", daemon=True)
    thread.start()
    while thread.is_alive():
        snap = engine.progress.snapshot()
        if snap.active and snap.sampling_steps:
            progress(snap.fraction, desc=f"{snap.sampling_step}/{snap.sampling_steps}")
        time.sleep(0.1)
    if "error" in box:
        err = box["error"]
        if isinstance(err, YijianError):
            raise gr.Error(f"{err.message(lang)} {err.hint(lang)}", title=err.code) from err
        raise err
    result: GenerationResult = box["result"]
    return result


def _outcome(result: GenerationResult, lang: str) -> tuple[list[Any], str]:
    shown = [str(p) for p in result.paths] or result.images
    notes = [zh_en[0] if lang == "zh" else zh_en[1] for zh_en in result.warnings]
    if result.interrupted:
        notes.append(text("interrupt", lang) + " ✓")
    info = "\n\n".join([*notes, *result.infotexts[:1]])
    return shown, info


def build_ui(engine: Engine, lang: str = "zh") -> gr.Blocks:
    sampler_names = samplers.sampler_names()
    schedule_names = [s["label"] for s in samplers.api_schedulers()]
    upscalers = [u.name for u in upscale.list_upscalers(engine.view.upscalers_dir)]
    demo_model = engine.model is not None and engine.model.is_demo

    with gr.Blocks(title=text("title", lang), analytics_enabled=False) as ui:
        if demo_model:
            gr.Markdown(_t("demo_banner"), elem_id="demo_banner")
        with gr.Tabs() as tabs:
            with gr.Tab(_t("txt2img"), id="txt2img"):
                t2i = _generation_tab(engine, "txt2img", sampler_names, schedule_names, upscalers, lang)
            with gr.Tab(_t("img2img"), id="img2img"):
                _generation_tab(engine, "img2img", sampler_names, schedule_names, upscalers, lang)
            with gr.Tab(_t("pnginfo"), id="pnginfo"):
                _pnginfo_tab(t2i, tabs)
            with gr.Tab(_t("models"), id="models"):
                _models_tab(engine, lang)
            with gr.Tab(_t("settings"), id="settings"):
                _settings_tab(engine)
    blocks: gr.Blocks = ui
    return blocks


def _generation_tab(engine: Engine, mode: str, sampler_names: list[str], schedule_names: list[str],
                    upscalers: list[str], lang: str) -> dict[str, Any]:  # fmt: skip
    w: dict[str, Any] = {}
    with gr.Row():
        with gr.Column(scale=4):
            w["prompt"] = gr.Textbox(label=_t("prompt"), lines=3, elem_id=f"{mode}_prompt")
            w["negative"] = gr.Textbox(label=_t("negative"), lines=2, elem_id=f"{mode}_neg_prompt")
        with gr.Column(scale=1, min_width=160):
            generate = gr.Button(_t("generate"), variant="primary", elem_id=f"{mode}_generate")
            stop = gr.Button(_t("interrupt"), elem_id=f"{mode}_interrupt")
    with gr.Row():
        with gr.Column():
            sources = img2img_sources.build(_t) if mode == "img2img" else None  # picture, mask, inpaint settings
            with gr.Row():
                w["sampler"] = gr.Dropdown(
                    sampler_names, value="Euler a", label=_t("sampler"), elem_id=f"{mode}_sampler"
                )
                w["schedule"] = gr.Dropdown(schedule_names, value="Automatic", label=_t("schedule"),
                                            elem_id=f"{mode}_scheduler")  # fmt: skip
            w["steps"] = gr.Slider(1, 150, value=20, step=1, label=_t("steps"), elem_id=f"{mode}_steps")
            with gr.Row():
                w["width"] = gr.Slider(64, 2048, value=512, step=8, label=_t("width"), elem_id=f"{mode}_width")
                w["height"] = gr.Slider(64, 2048, value=512, step=8, label=_t("height"), elem_id=f"{mode}_height")
            with gr.Row():
                w["n_iter"] = gr.Slider(1, 16, value=1, step=1, label=_t("batch_count"), elem_id=f"{mode}_batch_count")
                w["batch_size"] = gr.Slider(1, 8, value=1, step=1, label=_t("batch_size"), elem_id=f"{mode}_batch_size")
            w["cfg"] = gr.Slider(1, 30, value=7, step=0.5, label=_t("cfg"), elem_id=f"{mode}_cfg_scale")
            w["denoising"] = gr.Slider(0.01, 1, value=0.75 if mode == "img2img" else 0.7, step=0.01,
                                       label=_t("denoising"), elem_id=f"{mode}_denoising_strength",
                                       visible=mode == "img2img")  # fmt: skip
            with gr.Row():
                w["seed"] = gr.Number(-1, precision=0, label=_t("seed"), elem_id=f"{mode}_seed")
                w["tiling"] = gr.Checkbox(False, label=_t("tiling"), elem_id=f"{mode}_tiling")
            with gr.Accordion(_t("hires"), open=False, visible=mode == "txt2img"):
                w["enable_hr"] = gr.Checkbox(False, label=_t("hires"), elem_id=f"{mode}_enable_hr")
                with gr.Row():
                    w["hr_upscaler"] = gr.Dropdown(upscalers, value="Latent", label=_t("upscaler"),
                                                   elem_id=f"{mode}_hr_upscaler")  # fmt: skip
                    w["hr_scale"] = gr.Slider(
                        1, 4, value=2, step=0.05, label=_t("upscale_by"), elem_id=f"{mode}_hr_scale"
                    )
                with gr.Row():
                    w["hr_steps"] = gr.Slider(
                        0, 150, value=0, step=1, label=_t("hires_steps"), elem_id=f"{mode}_hires_steps"
                    )
                    w["hr_denoising"] = gr.Slider(0.01, 1, value=0.7, step=0.01, label=_t("denoising"),
                                                  elem_id=f"{mode}_hr_denoising")  # fmt: skip
        with gr.Column():
            gallery = gr.Gallery(label=_t("gallery"), elem_id=f"{mode}_gallery", columns=2, height=512,
                                 format="png", interactive=False)  # fmt: skip
            info = gr.Textbox(label=_t("info"), lines=6, elem_id=f"{mode}_info", interactive=False)

    keys = ["prompt", "negative", "sampler", "schedule", "steps", "width", "height", "n_iter", "batch_size", "cfg",
            "denoising", "seed", "tiling", "enable_hr", "hr_upscaler", "hr_scale", "hr_steps", "hr_denoising"]  # fmt: skip
    inputs = [w[k] for k in keys] + (sources.components if sources is not None else [])

    def run(*values: Any, progress: gr.Progress = gr.Progress()) -> tuple[list[Any], str]:  # noqa: B008 - Gradio's idiom
        v = dict(zip(keys, values[: len(keys)], strict=True))
        req = GenerationRequest(
            prompt=v["prompt"] or "", negative_prompt=v["negative"] or "", sampler_name=v["sampler"],
            scheduler=v["schedule"], steps=int(v["steps"]), width=int(v["width"]), height=int(v["height"]),
            n_iter=int(v["n_iter"]), batch_size=int(v["batch_size"]), cfg_scale=float(v["cfg"]),
            seed=int(v["seed"] if v["seed"] is not None else -1), tiling=bool(v["tiling"]),
            enable_hr=bool(v["enable_hr"]) and mode == "txt2img", hr_upscaler=v["hr_upscaler"],
            hr_scale=float(v["hr_scale"]), hr_second_pass_steps=int(v["hr_steps"]),
            hr_denoising_strength=float(v["hr_denoising"]),
        )  # fmt: skip
        if sources is not None:
            sources.fill(list(values[len(keys) :]), req, lang)
            req.denoising_strength = float(v["denoising"])
        return _outcome(_run(engine, req, lang, progress), lang)

    event = generate.click(run, inputs, [gallery, info], api_name=f"{mode}_generate")

    async def stop_now() -> None:  # async: runs on the event loop, never queued behind busy worker threads
        engine.interrupt()

    stop.click(stop_now, None, None, queue=False)
    w["_event"] = event
    return w


def _pnginfo_tab(t2i: dict[str, Any], tabs: gr.Tabs) -> None:
    with gr.Row():
        with gr.Column():
            image = gr.Image(label=_t("png_image"), type="filepath", elem_id="pnginfo_image", height=360)
        with gr.Column():
            raw = gr.Textbox(label=_t("png_text"), lines=8, elem_id="pnginfo_text", interactive=False)
            fields = gr.JSON(label=_t("png_fields"), elem_id="pnginfo_fields")
            send = gr.Button(_t("send_txt2img"), elem_id="pnginfo_send_txt2img")

    def read(path: str | None) -> tuple[str, dict[str, Any]]:
        if not path:
            return "", {}
        from PIL import Image

        with Image.open(path) as im:
            found = read_parameters(im) or ""
        return found, parse_parameters(found) if found else {}

    image.change(read, image, [raw, fields], api_name="pnginfo")

    # infotext key -> (txt2img widget, converter): parsed values are strings; Number/Slider need numbers
    sent = {"Prompt": ("prompt", str), "Negative prompt": ("negative", str), "Steps": ("steps", int),
            "Sampler": ("sampler", str), "Schedule type": ("schedule", str), "CFG scale": ("cfg", float),
            "Seed": ("seed", int), "Size-1": ("width", int), "Size-2": ("height", int)}  # fmt: skip

    def send_to_txt2img(parsed: dict[str, Any] | None) -> list[Any]:
        p = parsed or {}
        updates: list[Any] = [gr.Tabs(selected="txt2img")]  # A1111 shows the txt2img tab after sending
        for key, (_, convert) in sent.items():
            try:
                updates.append(gr.update(value=convert(p[key])) if key in p else gr.update())
            except ValueError:  # a damaged field is left as it was
                updates.append(gr.update())
        return updates

    send.click(send_to_txt2img, fields, [tabs, *[t2i[w] for w, _ in sent.values()]])


def _models_tab(engine: Engine, lang: str) -> None:
    def titles() -> list[str]:
        return [c.title for c in engine.checkpoints]

    def status() -> str:
        m = engine.model
        if m is None:
            return text("model_status", lang) + ": -"
        return f"{m.checkpoint.title} · {m.architecture} · {m.load_seconds:.1f} s"

    current = engine.model.checkpoint.title if engine.model else None
    with gr.Row():
        choice = gr.Dropdown(
            titles(),
            value=current if current in titles() else None,
            label=_t("checkpoint"),
            elem_id="model_checkpoint",
            allow_custom_value=False,
        )  # fmt: skip - library only
        refresh = gr.Button(_t("refresh"), elem_id="model_refresh")
        load = gr.Button(_t("load"), variant="primary", elem_id="model_load")
    vae = gr.Dropdown(["Automatic", *engine.view.vaes], value="Automatic", label=_t("vae"), elem_id="model_vae")
    shown = gr.Textbox(status(), label=_t("model_status"), interactive=False, elem_id="model_status")

    def do_refresh() -> tuple[Any, Any]:
        engine.refresh()
        return gr.update(choices=titles()), gr.update(choices=["Automatic", *engine.view.vaes])

    def do_load(title: str | None, vae_name: str) -> str:
        try:
            engine.set_options(checkpoint=title or None, vae=vae_name or "Automatic")
        except YijianError as e:
            raise gr.Error(f"{e.message(lang)} {e.hint(lang)}", title=e.code) from e
        return status()

    refresh.click(do_refresh, None, [choice, vae])
    load.click(do_load, [choice, vae], shown)


def _settings_tab(engine: Engine) -> None:
    placement = engine.placement
    gr.Textbox(placement.reason if placement else "-", label=_t("device"), interactive=False, elem_id="settings_device")
    gr.Textbox(str(engine.outputs.root), label=_t("outputs"), interactive=False, elem_id="settings_outputs")
    gr.Markdown(_t("language_note"))
    gr.Code(json.dumps({"api": "/sdapi/v1", "docs": "/docs"}, indent=2), language="json", label="API")
