"""The chaos soak's stand-in network: the harness's servers, fault-injecting proxies per run, and bundles using them.

:func:`start_network` starts, once per soak, the package index as PyPI and as
the PyTorch index (``/whl/cpu``), and the Hugging Face endpoint holding the
catalog's default model (:func:`build_sd15_stand_in`) and the SD 1.5 config
folder.  :meth:`Network.start_proxies` puts a set of
:class:`~tests.support.chaos_proxy.ChaosProxy` in front of them, two per
channel standing for two mirrors; the soak gives each run a set no other run
uses meanwhile, so runs side by side never share a fault or a byte count.  :func:`prepare_bundle` makes a fresh bundle whose mirrors are
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
from tests.support.chaos_proxy import RESUMED, ChaosProxy, PathCount, start_proxy
from tests.support.hermetic import MACHINE_WHEELS, REPO
from tests.support.hf_endpoint import HfEndpoint
from tests.support.httpbase import LocalServer
from tests.support.pypi_index import PackageIndex
from tests.support.tiny_sd import TinySD, repo_config_files
from tests.support.wheels import relabel_wheel

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


Proxies = dict[str, list[ChaosProxy]]  # channel -> one proxy per mirror, in the order of Network.mirrors


@dataclass
class Network:
    """The shared stand-ins, where each run's proxies point, and what the stand-ins serve."""

    index: PackageIndex
    hub: HfEndpoint
    upstreams: dict[str, list[tuple[str, str]]]  # channel -> (proxy name, stand-in URL) per mirror, in mirror order
    served: dict[str, str]  # file name -> sha256 of what the stand-ins serve (models, wheels)
    config_files: dict[str, bytes]  # the SD 1.5 config folder as served
    checkpoint: tuple[str, int, str]  # catalog file name, size, sha256
    mirrors: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(MIRRORS))  # mirror ids per channel
    notes: list[str] = field(default_factory=list)
    others: list[LocalServer] = field(default_factory=list)  # further stand-ins (ModelScope)

    def start_proxies(self) -> Proxies:
        """A set of mirrors for one run at a time: a new proxy per mirror, in front of the shared stand-ins (no fault)."""
        return {ch: [start_proxy(url, name, SLOW_S) for name, url in ups] for ch, ups in self.upstreams.items()}

    def stop(self) -> None:
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
        if not wheel.name.startswith("torch-") and not (pypi / wheel.name).exists():  # torch: below
            shutil.copy2(wheel, pypi / wheel.name)  # copies: the shared download cache may be cleaned mid-soak
    shutil.copy2(torch, cpu / torch.name)
    # PyPI carries the plain version (torch==2.13.0), which the torch channel's PyPI route asks for
    # (packs/cpu.toml pypi_torch_linux); the real one is a CUDA build, the stand-in's a renamed copy of the CPU wheel.
    for pin in pack.pypi_pins("linux"):
        if pin.startswith("torch=="):
            relabel_wheel(torch, pypi, pin.split("==", 1)[1])  # a second or two: members are copied still compressed
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
    for folder in (pypi, cpu):
        index.wheels(folder)  # hashes every wheel once now: on a first request it took longer than stage 0's probe
    index.start()
    upstreams = {
        "pypi": [(f"pypi-{m}", index.url) for m in MIRRORS["pypi"]],
        "torch": [(f"torch-{m}", index.url) for m in MIRRORS["torch"]],
        "huggingface": [(f"hf-{m}", hub.url) for m in MIRRORS["huggingface"]],
    }
    served = {w.name: sha256_of(w) for folder in (pypi, cpu) for w in folder.glob("*.whl")}
    served[name] = hashlib.sha256(data).hexdigest()
    net = Network(index, hub, upstreams, served, configs, (name, len(data), served[name]), dict(MIRRORS))
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
        net.served[Path(entry.modelscope.file).name] = hashlib.sha256(data).hexdigest()  # saved under its own name
        held.append("the default model")
    spec = load_architectures(architectures_path(Bundle(ROOT, code=ROOT)))["sd15"]
    if getattr(spec, "modelscope", ""):
        ms.add_repo(spec.modelscope, net.config_files)
        held.append("the SD 1.5 config folder")
    net.upstreams["huggingface"].append(("modelscope", ms.url))
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


def prepare_bundle(where: Path, net: Network, proxies: Proxies, faults: dict[str, list[str | None]],
                   shared_uv_cache: Path) -> Path:  # fmt: skip
    """A fresh bundle at ``where`` using one run's ``proxies``, each switched to its fault in ``faults`` (per mirror)."""
    bundle = copy_bundle(where)
    isolate_mirrors(bundle)
    for ch in net.mirrors:
        urls = {}
        for mirror_id, proxy, fault in zip(net.mirrors[ch], proxies[ch], faults[ch], strict=True):
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
    # The ModelScope copy (another file name, its own sha256) is the same stand-in model on the ModelScope stand-in.
    stand_in = re.sub(r'(?m)^(modelscope = \{.*?\bsha256 = ")[0-9a-f]{64}(")', lambda m: m.group(1) + sha + m.group(2),
                      stand_in)  # fmt: skip
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


Counts = dict[tuple[str, str], PathCount]  # (channel, path) -> bytes sent by every mirror of the channel


def sent_by_file(proxies: Proxies) -> Counts:
    """What one run's proxies sent per file: body bytes in all and per program, and the file's size (0: never whole)."""
    per: Counts = defaultdict(PathCount)
    for ch, group in proxies.items():
        for p in group:
            for path, c in p.bytes_by_path().items():
                total = per[ch, path]
                total.sent += c.sent
                total.size = max(total.size, c.size)
                for agent, n in c.by_agent.items():
                    total.by_agent[agent] = total.by_agent.get(agent, 0) + n
    return dict(per)


@dataclass(frozen=True)
class Refetch:
    """One file fetched (partly) twice because of a kill: the bytes beyond what finishing it needed, and by whom."""

    channel: str
    path: str
    size: int
    bytes: int
    by: tuple[str, ...]  # the programs (user agents' first word) that fetched bytes again

    def describe(self) -> str:
        name = self.path.rsplit("/", 1)[-1]
        return f"{name} ({self.channel}, {self.bytes / (1 << 20):.1f} of {self.size / (1 << 20):.1f} MiB, by {'+'.join(self.by) or '?'})"


def _per_program(count: PathCount) -> dict[str, int]:
    """Bytes per program, a resume's ranged answers added to the program's own."""
    out: dict[str, int] = defaultdict(int)
    for agent, n in count.by_agent.items():
        out[agent.removesuffix(RESUMED)] += n
    return dict(out)


def refetches(before: Counts, after: Counts) -> list[Refetch]:
    """What the kill cost, per file and program (a perfect resume: nothing).

    A program that had ``b`` bytes of a file of ``size`` before the kill needs ``size - b`` more to finish it (none
    if it had it whole); what it was sent after the kill beyond that was fetched twice.  Counted per program, since
    two programs fetching one file (stage 0's pip and the builder's uv both install anyio) is no kill's doing.
    """
    out = []
    for key, was in before.items():
        now = after.get(key, was)
        if not now.size:
            continue
        had, has = _per_program(was), _per_program(now)
        again = {p: has.get(p, 0) - b - (now.size - min(b, now.size)) for p, b in had.items() if b}
        twice = {p: n for p, n in again.items() if n > 0}
        if twice:
            out.append(Refetch(key[0], key[1], now.size, sum(twice.values()), tuple(sorted(twice))))
    return out


def refetched_bytes(before: Counts, after: Counts) -> int:
    """The bytes of :func:`refetches` in all."""
    return sum(r.bytes for r in refetches(before, after))
