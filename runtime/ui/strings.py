"""Every label of the UI in Chinese and English (words from A1111's zh_CN localization).

Gradio picks the language from the browser (``gr.I18n``); Chinese browsers
get the words our users already know from A1111 and 秋叶's bundle.
"""

from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    "title": ("一键 Yijian · 生成界面", "Yijian · generation UI"),
    "demo_banner": ("⚠ 演示模型（随机权重）：只会生成彩色噪点，用来试用界面与接口。",
                    "⚠ Demo model (random weights): it only draws coloured noise, for trying the UI and the API."),
    "txt2img": ("文生图", "txt2img"),
    "img2img": ("图生图", "img2img"),
    "pnginfo": ("PNG 图片信息", "PNG Info"),
    "models": ("模型", "Models"),
    "settings": ("设置", "Settings"),
    "prompt": ("正向提示词", "Prompt"),
    "negative": ("反向提示词", "Negative prompt"),
    "generate": ("生成", "Generate"),
    "interrupt": ("中止", "Interrupt"),
    "sampler": ("采样方法", "Sampling method"),
    "schedule": ("调度类型", "Schedule type"),
    "steps": ("迭代步数", "Sampling steps"),
    "width": ("宽度", "Width"),
    "height": ("高度", "Height"),
    "cfg": ("提示词引导系数 (CFG Scale)", "CFG Scale"),
    "seed": ("随机数种子 (Seed)，-1 为随机", "Seed (-1: random)"),
    "batch_count": ("总批次数", "Batch count"),
    "batch_size": ("单批数量", "Batch size"),
    "tiling": ("可平铺 (Tiling)", "Tiling"),
    "hires": ("高分辨率修复 (Hires. fix)", "Hires. fix"),
    "upscaler": ("放大算法", "Upscaler"),
    "upscale_by": ("放大倍数", "Upscale by"),
    "hires_steps": ("高分迭代步数（0 与迭代步数相同）", "Hires steps (0: same as sampling steps)"),
    "denoising": ("重绘幅度", "Denoising strength"),
    "init_image": ("原图", "Source image"),
    "resize_mode": ("缩放模式", "Resize mode"),
    "resize_just": ("仅调整大小", "Just resize"),
    "resize_crop": ("裁剪后缩放", "Crop and resize"),
    "resize_fill": ("缩放后填充空白", "Resize and fill"),
    # img2img sources and inpainting (runtime/ui/img2img.py), in A1111's zh_CN words
    "resize_latent": ("调整大小（潜空间放大）", "Just resize (latent upscale)"),
    "src_img2img": ("图生图", "img2img"),
    "src_inpaint": ("局部重绘", "Inpaint"),
    "src_sketch": ("涂鸦重绘", "Inpaint sketch"),
    "src_upload": ("上传重绘蒙版", "Inpaint upload"),
    "inpaint_editor": ("原图（用画笔涂出要重绘的区域）", "Image (paint over the area to redraw)"),
    "sketch_editor": ("原图（用彩色画笔涂抹，涂过的地方会重绘）", "Image (coloured strokes are redrawn)"),
    "upload_mask": ("蒙版（白色为重绘区域）", "Mask (white is redrawn)"),
    "mask_blur": ("蒙版边缘模糊度", "Mask blur"),
    "mask_alpha": ("蒙版透明度", "Mask transparency"),
    "mask_mode": ("蒙版模式", "Mask mode"),
    "mode_masked": ("重绘蒙版内容", "Inpaint masked"),
    "mode_not_masked": ("重绘非蒙版内容", "Inpaint not masked"),
    "masked_content": ("蒙版区域内容处理", "Masked content"),
    "fill_fill": ("填充", "fill"),
    "fill_original": ("原图", "original"),
    "fill_noise": ("潜空间噪声", "latent noise"),
    "fill_nothing": ("空白潜空间", "latent nothing"),
    "inpaint_area": ("重绘区域", "Inpaint area"),
    "area_whole": ("整张图片", "Whole picture"),
    "area_masked": ("仅蒙版区域", "Only masked"),
    "padding": ("仅蒙版区域下边缘预留像素", "Only masked padding, pixels"),
    "need_image": ("请先上传一张原图。", "Upload a source image first."),
    "need_mask": ("请先画出（或上传）要重绘区域的蒙版。", "Paint (or upload) a mask over the area to redraw first."),
    "gallery": ("生成结果", "Output"),
    "info": ("生成信息", "Generation info"),
    "png_image": ("上传图片（PNG/JPEG/WEBP）", "Image (PNG/JPEG/WEBP)"),
    "png_text": ("参数文本", "Parameters"),
    "png_fields": ("解析结果", "Parsed fields"),
    "send_txt2img": ("发送到文生图", "Send to txt2img"),
    "checkpoint": ("Stable Diffusion 模型（大模型）", "Stable Diffusion checkpoint"),
    "vae": ("外挂 VAE 模型", "SD VAE"),
    "refresh": ("刷新", "Refresh"),
    "load": ("加载", "Load"),
    "model_status": ("当前模型", "Loaded model"),
    "clip_skip": ("CLIP 终止层数", "Clip skip"),
    "device": ("生成引擎", "Compute device"),
    "outputs": ("图片保存位置", "Images are saved in"),
    "language_note": ("界面语言跟随浏览器；也可在页面底部的“设置”里切换。",
                      "The UI follows the browser's language; switch it under Settings at the bottom of the page."),
}  # fmt: skip


def zh() -> dict[str, str]:
    return {k: v[0] for k, v in STRINGS.items()}


def en() -> dict[str, str]:
    return {k: v[1] for k, v in STRINGS.items()}


def text(key: str, lang: str) -> str:
    zh_text, en_text = STRINGS[key]
    return zh_text if lang == "zh" else en_text
