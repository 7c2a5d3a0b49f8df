"""Models: the shipped catalog, the library of model files (standard library only), and downloads from links.

* :mod:`launcher.models.catalog` - ``models/catalog.toml``: what can be downloaded, from where, into which folder;
* :mod:`launcher.models.library` - what is in ``models/`` and shared A1111 / 秋叶 / ComfyUI folders (``scan``, ``verify``);
* :mod:`launcher.models.safetensors_header` - header reader and the download engine's wrong-content sniffer;
* :mod:`launcher.models.architecture` - SD 1.5 / 2.x / XL detection from header keys and shapes;
* :mod:`launcher.models.hashes` - A1111's sha256, short and legacy hashes, and ``cache/hashes.json``;
* :mod:`launcher.models.links` - what a pasted link means (Civitai, AIR, ModelScope, Hugging Face, a URL);
  :mod:`~launcher.models.resolve` turns it into a download plan through :mod:`~launcher.models.civitai`,
  :mod:`~launcher.models.modelscope` and the Hugging Face code, with the sites' :mod:`~launcher.models.tokens`;
* :mod:`launcher.models.sidecar` - ``NAME.json``, ``NAME.civitai.info``, ``NAME.preview.png`` beside a download;
* :mod:`launcher.models.fetch` - one download into the library (CLI, TUI and one-click start share it).

Nothing here loads a tensor or imports torch: the launcher inspects models it may not be able to run.
"""
