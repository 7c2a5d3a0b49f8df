"""The source part of the 图生图/img2img tab: img2img, inpaint, inpaint sketch, inpaint upload (A1111's sub-tabs).

:func:`build` lays out the four sources, the resize mode and the inpaint
settings (shown on the inpaint sub-tabs only) and returns the components the
Generate button reads; :meth:`Sources.fill` puts their values into a request.
The mask and picture come from :mod:`runtime.inpaint.editor`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from runtime.inpaint import editor
from runtime.request import GenerationRequest
from runtime.ui.strings import text

RESIZE_MODES = ("resize_just", "resize_crop", "resize_fill", "resize_latent")
SOURCES = ("src_img2img", "src_inpaint", "src_sketch", "src_upload")
IMG2IMG, INPAINT, SKETCH, UPLOAD = range(4)
FILLS = ("fill_fill", "fill_original", "fill_noise", "fill_nothing")
SKETCH_COLORS: list[str | tuple[str, float]] = [
    "#ffffff",
    "#000000",
    "#ff0000",
    "#00a000",
    "#0050ff",
    "#ffd000",
    "#ff80c0",
    "#8b4513",
]


@dataclass
class Sources:
    components: list[Any]

    def fill(self, values: list[Any], req: GenerationRequest, lang: str) -> None:
        """Put the source picture, its mask and the inpaint settings into ``req``; gr.Error names what is missing."""
        source, init, inpaint, sketch, up_image, up_mask, resize_mode, blur, alpha, invert, fill, area, padding = values
        source = int(source or 0)
        image, mask = init, None
        if source == INPAINT:
            image, mask = editor.inpaint_input(inpaint)
        elif source == SKETCH:
            image, mask = editor.sketch_input(sketch, float(alpha or 0), int(blur or 0))
        elif source == UPLOAD:
            image, mask = up_image, up_mask
        if image is None:
            raise gr.Error(text("need_image", lang))
        if source != IMG2IMG and editor.is_blank(mask):
            raise gr.Error(text("need_mask", lang))
        req.init_images, req.resize_mode = [image], int(resize_mode or 0)
        if source != IMG2IMG:
            req.mask = mask
            req.mask_blur_x = req.mask_blur_y = int(blur)
            req.inpainting_mask_invert = int(invert)
            req.inpainting_fill = int(fill)
            req.inpaint_full_res = int(area) == 1
            req.inpaint_full_res_padding = int(padding)


def build(t: Callable[[str], Any]) -> Sources:
    source = gr.State(IMG2IMG)
    with gr.Tabs(elem_id="img2img_sources"):
        with gr.Tab(t("src_img2img"), id="src_img2img", elem_id="img2img_img2img_tab") as tab0:
            init = gr.Image(label=t("init_image"), type="pil", elem_id="img2img_image", height=360, format="png")
        with gr.Tab(t("src_inpaint"), id="src_inpaint", elem_id="img2img_inpaint_tab") as tab1:
            inpaint = gr.ImageEditor(label=t("inpaint_editor"), type="pil", elem_id="img2maskimg", height=420,
                                     format="png", layers=False, transforms=(),
                                     brush=gr.Brush(colors=["#ffffff"], color_mode="fixed", default_size=12),
                                     eraser=gr.Eraser(default_size=12))  # fmt: skip
        with gr.Tab(t("src_sketch"), id="src_sketch", elem_id="img2img_inpaint_sketch_tab") as tab2:
            sketch = gr.ImageEditor(label=t("sketch_editor"), type="pil", elem_id="inpaint_sketch", height=420,
                                    format="png", layers=False, transforms=(),
                                    brush=gr.Brush(colors=SKETCH_COLORS, color_mode="defaults", default_size=12))  # fmt: skip
        with gr.Tab(t("src_upload"), id="src_upload", elem_id="img2img_inpaint_upload_tab") as tab3:
            with gr.Row():
                up_image = gr.Image(label=t("init_image"), type="pil", elem_id="img_inpaint_base", format="png")
                up_mask = gr.Image(label=t("upload_mask"), type="pil", image_mode="RGBA", elem_id="img_inpaint_mask",
                                   format="png")  # fmt: skip
    resize_mode = gr.Radio([(t(k), i) for i, k in enumerate(RESIZE_MODES)], value=0, label=t("resize_mode"),
                           elem_id="img2img_resize_mode")  # fmt: skip
    with gr.Group(visible=False, elem_id="img2img_inpaint_controls") as controls:
        with gr.Row():
            blur = gr.Slider(0, 64, value=4, step=1, label=t("mask_blur"), elem_id="img2img_mask_blur")
            alpha = gr.Slider(0, 100, value=0, step=1, label=t("mask_alpha"), elem_id="img2img_mask_alpha",
                              visible=False)  # fmt: skip
        invert = gr.Radio([(t("mode_masked"), 0), (t("mode_not_masked"), 1)], value=0, label=t("mask_mode"),
                          elem_id="img2img_mask_mode")  # fmt: skip
        fill = gr.Radio([(t(k), i) for i, k in enumerate(FILLS)], value=1, label=t("masked_content"),
                        elem_id="img2img_inpainting_fill")  # fmt: skip
        with gr.Row():
            area = gr.Radio([(t("area_whole"), 0), (t("area_masked"), 1)], value=0, label=t("inpaint_area"),
                            elem_id="img2img_inpaint_full_res")  # fmt: skip
            padding = gr.Slider(0, 256, value=32, step=4, label=t("padding"), elem_id="img2img_inpaint_padding")

    def chooser(index: int) -> Callable[[], tuple[int, Any, Any]]:
        def choose() -> tuple[int, Any, Any]:
            return index, gr.update(visible=index != IMG2IMG), gr.update(visible=index == SKETCH)

        return choose

    for index, tab in enumerate((tab0, tab1, tab2, tab3)):
        tab.select(chooser(index), None, [source, controls, alpha], queue=False)
    return Sources([source, init, inpaint, sketch, up_image, up_mask, resize_mode, blur, alpha, invert, fill, area,
                    padding])  # fmt: skip
