"""The chaos soak's stand-in network: the harness's servers, a fault-injecting proxy per mirror, and bundles using them.

:func:`start_network` starts, once per soak, the package index as PyPI and as
the PyTorch index (``/whl/cpu``), and the Hugging Face endpoint holding the
catalog's default model (:func:`build_sd15_stand_in`) and the SD 1.5 config
folder; two :class:`~tests.support.chaos_proxy.ChaosProxy` per channel stand
for two mirrors.  :func:`prepare_bundle` makes a fresh bundle whose mirrors are
those proxies (every other mirror refused) with one run's faults switched on.
See benchmarks/chaos.py for the soak itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap.layout import Bundle
from tests.support.bundle_copy import copy_bundle, isolate_mirrors, launcher_wheels, pypi_download, set_mirror_urls
from tests.support.chaos_proxy import ChaosProxy, start_proxy
from tests.support.hermetic import MACHINE_WHEELS, REPO
from tests.support.hf_endpoint import HfEndpoint
from tests.support.httpbase import LocalServer
from tests.support.pypi_index import PackageIndex
from tests.support.tiny_sd import TinySD, repo_config_files

ROOT = REPO
SD15_WIDTH = 768
SLOW_S = 2.0  # the slow first byte: beyond a quick probe's patience, well within a download's
CHANNELS = ("pypi", "torch", "huggingface")
MIRRORS: dict[str, tuple[str, ...]] = {
    "pypi": ("tuna", "pypi"),
    "torch": ("nju", "official"),
    "huggingface": ("hf-mirror", "huggingface"),
}
URL_SUFFIX = {"pypi": "/simple", "torch": "/whl/{cuda}/simple", "huggingface": ""}


@dataclass
class Network:
    """The stand-ins, the proxies in front of them, and what they serve."""

    index: PackageIndex
    hub: HfEndpoint
    proxies: dict[str, list[ChaosProxy]]
    served: dict[str, str]  # file name -> sha256 of what the stand-ins serve (models, wheels)
    config_files: dict[str, bytes]  # the SD 1.5 config folder as served
    checkpoint: tuple[str, int, str]  # catalog file name, size, sha256
    mirrors: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(MIRRORS))  # mirror ids per channel
    notes: list[str] = field(default_factory=list)
    others: list[LocalServer] = field(default_factory=list)  # further stand-ins (ModelScope)

    def stop(self) -> None:
        for proxies in self.proxies.values():
            for p in proxies:
                p.stop()
        self.index.stop()
        self.hub.stop()
        for server in self.others:
            server.stop()


def torch_wheel(folder: str = MACHINE_WHEELS) -> Path | None:
    """The CPU pack's torch wheel in a local wheel folder (default: the machine's, PIP_FIND_LINKS), or None."""
    found = sorted(Path(folder).glob("torch-2.13.0+cpu-*.whl")) if folder else []
    return found[0] if found else None


def wheel_folders(work: Path, torch_wheels: str) -> tuple[Path, Path]:
    """The PyPI folder (launcher, pip and runtime wheels, no torch) and the torch index's ``cpu`` folder."""
    import ensurepip

    from launcher.packs.catalog import load_packs

    torch = torch_wheel(torch_wheels)
    if torch is None:
        raise SystemExit("chaos: no torch-2.13.0+cpu wheel in the machine's wheel folder (PIP_FIND_LINKS)")
    packs = load_packs(ROOT / "packs")
    pack = packs.require("cpu")
    reqs = packs.runtime_requirements(pack)
    key = hashlib.sha256("\n".join([*pack.pins("linux"), *reqs, sys.version]).encode()).hexdigest()[:12]
    runtime = pypi_download(f"runtime-wheels-{key}", ["--only-binary=:all:", "--find-links", str(torch.parent),
                                                      *pack.pins("linux"), *reqs])  # fmt: skip
    pypi, cpu = work / "wheels" / "pypi", work / "wheels" / "cpu"
    for folder in (pypi, cpu):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    pip = next((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    for wheel in [*launcher_wheels().glob("*.whl"), *runtime.glob("*.whl"), pip]:
        if not wheel.name.startswith("torch-") and not (pypi / wheel.name).exists():
            shutil.copy2(wheel, pypi / wheel.name)  # copies: the shared download cache may be cleaned mid-soak
    shutil.copy2(torch, cpu / torch.name)
    return pypi, cpu


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def start_network(work: Path, say: Callable[[str], None], torch_wheels: str = MACHINE_WHEELS) -> Network:
    from launcher.models.catalog import load_model_catalog

    pypi, cpu = wheel_folders(work, torch_wheels)
    tiny = build_sd15_stand_in(work / "tiny-sd")
    entry = load_model_catalog(ROOT / "models" / "catalog.toml").default()
    data = tiny.checkpoint.read_bytes()
    assert entry.hf is not None
    name = entry.filename
    hub = HfEndpoint()
    hub.start()
    hub.add_repo(entry.hf.repo, {entry.hf.file: data}, lfs=(entry.hf.file,))
    configs = repo_config_files(tiny.config_dir)
    hub.add_repo("stable-diffusion-v1-5/stable-diffusion-v1-5", configs, lfs=("tokenizer/vocab.json",)
                 if "tokenizer/vocab.json" in configs else ())  # fmt: skip
    index = PackageIndex(root=pypi, variants={"cpu": cpu})
    index.start()
    proxies = {
        "pypi": [start_proxy(index.url, f"pypi-{m}", SLOW_S) for m in MIRRORS["pypi"]],
        "torch": [start_proxy(index.url, f"torch-{m}", SLOW_S) for m in MIRRORS["torch"]],
        "huggingface": [start_proxy(hub.url, f"hf-{m}", SLOW_S) for m in MIRRORS["huggingface"]],
    }
    served = {w.name: sha256_of(w) for folder in (pypi, cpu) for w in folder.glob("*.whl")}
    served[name] = hashlib.sha256(data).hexdigest()
    net = Network(index, hub, proxies, served, configs, (name, len(data), served[name]), dict(MIRRORS))
    if importlib.util.find_spec("tests.support.modelscope_endpoint") is None:
        net.notes.append("ModelScope: tests/support/modelscope_endpoint.py is not in this tree yet; the ModelScope "
                         "mirror stays dead (refused) in every run, so no run can route around Hugging Face through it")  # fmt: skip
    else:
        add_modelscope(net, entry, data)
    net.notes.append("Python builds and GitHub proxies: not exercised (setup.python = \"system\"; stage 0 finds this "
                     "machine's python3, so neither channel is asked)")  # fmt: skip
    for note in net.notes:
        say(f"note: {note}")
    return net


def add_modelscope(net: Network, entry: Any, data: bytes) -> None:
    """The ModelScope stand-in as the Hugging Face channel's third mirror (id "modelscope"), behind its own proxy.

    It holds the default model where the catalog entry names a ModelScope copy, and the SD 1.5 config folder
    under the repository models/architectures.toml names for ModelScope.
    """
    from launcher.models.configs import architectures_path, load_architectures

    # Imported by name: the module arrives with another branch (engineer c), and this file must work before it does.
    ms = importlib.import_module("tests.support.modelscope_endpoint").ModelScopeEndpoint()
    ms.start()
    net.others.append(ms)
    held = []
    if entry.modelscope is not None:
        ms.add_repo(entry.modelscope.repo, {entry.modelscope.file: data})
        held.append("the default model")
    spec = load_architectures(architectures_path(Bundle(ROOT, code=ROOT)))["sd15"]
    if getattr(spec, "modelscope", ""):
        ms.add_repo(spec.modelscope, net.config_files)
        held.append("the SD 1.5 config folder")
    net.proxies["huggingface"].append(start_proxy(ms.url, "modelscope", SLOW_S))
    net.mirrors["huggingface"] = (*net.mirrors["huggingface"], "modelscope")
    net.notes.append("ModelScope: the stand-in is the Hugging Face channel's third mirror, holding "
                     + (" and ".join(held) or "nothing (no ModelScope copy in the catalog or architectures.toml)"))  # fmt: skip


def build_sd15_stand_in(dest: Path) -> TinySD:
    """The tiny random model with SD 1.5's cross-attention width (768), so the library and the runtime take it for SD 1.5.

    The harness's tiny model is 32 wide, which the architecture check rightly calls unknown; the catalog's default
    entry is an SD 1.5 single file.  Text encoder and UNet stay tiny otherwise (a few MB).
    """
    import runtime.demo
    import tests.support.tiny_sd as tiny_sd

    saved = runtime.demo.CROSS_ATTENTION_DIM, tiny_sd.CROSS_ATTENTION_DIM
    runtime.demo.CROSS_ATTENTION_DIM = tiny_sd.CROSS_ATTENTION_DIM = SD15_WIDTH
    try:
        return tiny_sd.build_tiny_sd(dest)
    finally:
        runtime.demo.CROSS_ATTENTION_DIM, tiny_sd.CROSS_ATTENTION_DIM = saved


def prepare_bundle(where: Path, net: Network, faults: dict[str, list[str | None]], shared_uv_cache: Path) -> Path:
    """A fresh bundle at ``where`` using the proxies, each switched to its fault in ``faults`` (channel -> per mirror)."""
    bundle = copy_bundle(where)
    isolate_mirrors(bundle)
    for ch, proxies in net.proxies.items():
        urls = {}
        for mirror_id, proxy, fault in zip(net.mirrors[ch], proxies, faults[ch], strict=True):
            proxy.set_fault(fault)
            urls[mirror_id] = proxy.mirror_url(URL_SUFFIX[ch])
        set_mirror_urls(bundle / "mirrors.toml", ch, urls)
    name, size, sha = net.checkpoint
    catalog = bundle / "models" / "catalog.toml"
    text = catalog.read_text(encoding="utf-8")
    entry = re.search(r'(?ms)^\[\[model\]\]\nid = "sd15".*?(?=^\[\[model\]\])', text)
    assert entry is not None
    stand_in = re.sub(r"(?m)^revision = .*\n", "", entry.group(0))
    stand_in = re.sub(r"(?m)^size = .*$", f"size = {size}", stand_in)
    stand_in = re.sub(r"(?m)^sha256 = .*$", f'sha256 = "{sha}"', stand_in)
    catalog.write_text(text.replace(entry.group(0), stand_in), encoding="utf-8")
    # The stand-in model is the tiny SD 1.5 of the harness, so the bundle ships its config folder (with its own
    # tokenizer files) in place of the real SD 1.5 configs that models/configs/sd15 holds.
    shipped = bundle / "models" / "configs" / "sd15"
    shutil.rmtree(shipped, ignore_errors=True)
    for rel, data in net.config_files.items():
        (shipped / rel).parent.mkdir(parents=True, exist_ok=True)
        (shipped / rel).write_bytes(data)
    arch = bundle / "models" / "architectures.toml"
    files = ", ".join(f'"{p}"' for p in sorted(net.config_files))
    text = re.sub(r'(?s)(id = "sd15".*?files = )\[.*?\]', lambda m: f"{m.group(1)}[{files}]",
                  arch.read_text(encoding="utf-8"), count=1)  # fmt: skip
    text = re.sub(r'(?s)(id = "sd15".*?tokenizers = )\[.*?\]', lambda m: f"{m.group(1)}[]", text, count=1)
    arch.write_text(text, encoding="utf-8")
    (bundle / "config.toml").write_text('[setup]\npack = "cpu"\npython = "system"\n', encoding="utf-8")
    (bundle / "cache").mkdir(exist_ok=True)
    os.symlink(shared_uv_cache, bundle / "cache" / "uv")  # see the module docstring: what sharing it hides
    return bundle


def sent_by_file(net: Network) -> dict[tuple[str, str], list[int]]:
    """(channel, path) -> [body bytes sent by any mirror of the channel, the file's size (0: never seen whole)]."""
    per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for ch, proxies in net.proxies.items():
        for p in proxies:
            for path, c in p.bytes_by_path().items():
                per[ch, path][0] += c.sent
                per[ch, path][1] = max(per[ch, path][1], c.size)
    return per


def refetched_bytes(before: dict[tuple[str, str], list[int]], after: dict[tuple[str, str], list[int]]) -> int:
    """Of the files partly or wholly sent before a kill: the bytes sent beyond one whole copy (a perfect resume: 0)."""
    total = 0
    for key, (sent_before, _) in before.items():
        sent, size = after.get(key, [sent_before, 0])
        if sent_before and size:
            total += max(0, sent - size)
    return total
