"""Inpainting and outpainting in img2img, as A1111 1.10 does them.

:mod:`.mask` (binary mask, invert, blur, latent mask), :mod:`.crop` ("only
masked": crop region, paste back, overlay), :mod:`.fill` (masked content),
:mod:`.resize` (A1111's resize modes, "resize and fill" for outpainting),
:mod:`.prepare` (the pixel side of one request), :mod:`.latents` (the pipeline
pass, inpainting UNets included), :mod:`.model` (9-channel checkpoints),
:mod:`.fields` (request checks, API fields), :mod:`.editor` (the UI's image
editor values).  Nothing here imports Gradio or FastAPI.
"""
