"""The Gradio generation UI (文生图, 图生图, PNG 图片信息, 模型, 设置) over the engine."""
