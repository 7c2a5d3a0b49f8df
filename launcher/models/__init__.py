"""Models: the shipped catalog and the library of model files (standard library only).

* :mod:`launcher.models.catalog` - ``models/catalog.toml``: what can be downloaded, from where, into which folder;
* :mod:`launcher.models.library` - what is in ``models/`` and shared A1111 / 秋叶 / ComfyUI folders (``scan``, ``verify``);
* :mod:`launcher.models.safetensors_header` - header reader and the download engine's wrong-content sniffer;
* :mod:`launcher.models.architecture` - SD 1.5 / 2.x / XL detection from header keys and shapes;
* :mod:`launcher.models.hashes` - A1111's sha256, short and legacy hashes, and ``cache/hashes.json``.

Nothing here loads a tensor or imports torch: the launcher inspects models it may not be able to run.
"""
