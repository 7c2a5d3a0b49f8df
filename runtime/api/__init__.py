"""The A1111-compatible REST API (``/sdapi/v1``), served beside the Gradio UI on one port."""
