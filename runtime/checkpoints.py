"""The models the runtime can use, and loading one checkpoint into a pipeline.

Listing reuses the launcher's model library (:mod:`launcher.models`, which is
standard-library only, so the runtime's environment can import it): the UI,
the API and ``yijian models list`` see the same files, extra A1111/秋叶
folders included.

Loading is offline, always.  A diffusers folder loads as it is; a single
``.safetensors`` file loads with ``config=`` pointing at the architecture's
config folder in ``cache/configs/<arch>`` (configs and tokenizer, no
weights), written from the data shipped in ``models/configs`` (by the launcher
before it starts the runtime, or here when a model of another architecture
is picked).
Without ``config=`` diffusers would go to the Hub.  A pickle (``.ckpt``,
``.pt``) loads only with ``--allow-ckpt``, and then with
``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bootstrap.layout import Bundle
from launcher.models.architecture import Detection, detect_diffusers, detect_header
from launcher.models.hashes import HashCache, short_hash
from launcher.models.library import ModelFile, describe, format_of, resolve_extra_dir, scan
from launcher.models.safetensors_header import read_header
from runtime.errors import (
    ArchitectureConfigMissing,
    ModelLoadFailed,
    ModelNotFound,
    ModelOutsideLibrary,
    PickleNotAllowed,
)
from runtime.inpaint.model import single_file_overrides

log = logging.getLogger("yijian.runtime")

PICKLE_FORMATS = ("ckpt", "pt", "pth", "bin")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint the user can pick, named the way A1111 names it."""

    path: Path
    format: str
    architecture: str | None
    v_prediction: bool | None
    sha256: str | None = None

    @property
    def model_name(self) -> str:
        return self.path.stem if self.format != "diffusers" else self.path.name

    @property
    def short_hash(self) -> str | None:
        return short_hash(self.sha256) if self.sha256 else None

    @property
    def title(self) -> str:
        """``name.safetensors [6ce0161689]``, as A1111's model list shows it."""
        return f"{self.path.name} [{self.short_hash}]" if self.short_hash else self.path.name

    def matches(self, wanted: str) -> bool:
        """A1111 clients name a model by title, file name, stem, short hash or path."""
        w = wanted.strip()
        if not w:
            return False
        names = {self.title, self.path.name, self.model_name, str(self.path)}
        if self.short_hash:
            names.add(self.short_hash)
        return w in names or w.lower() in {n.lower() for n in names} or w.split(" [")[0] == self.path.name


@dataclass(frozen=True)
class LibraryView:
    """What is in the model folders right now (refreshable)."""

    checkpoints: list[Checkpoint]
    loras: dict[str, Path]  # by lower-case stem, as <lora:name:w> refers to them
    vaes: dict[str, Path]  # by file name
    embeddings: dict[str, Path]  # by stem: the trigger word
    upscalers_dir: Path


def _checkpoint(m: ModelFile, cache: HashCache | None) -> Checkpoint:
    sha = cache.get(m.path) if cache is not None and m.path.is_file() else None
    return Checkpoint(m.path, m.format, m.architecture, m.v_prediction, sha)


class TypedDir(str):
    """A folder, or one file, holding one kind of model: what A1111's --ckpt-dir, --lora-dir, --vae-path … name.

    A ``str``, so it travels in ``EngineSettings.extra_model_dirs`` beside the plain extra folders (A1111/秋叶/
    ComfyUI ``models`` folders with typed subfolders); :func:`read_library` reads it as ``kind`` only.  Its files
    are added to the bundle's own, as A1111 lists both; an ``upscaler`` folder replaces models/ESRGAN.
    """

    kind: str  # checkpoint | lora | vae | embedding | upscaler

    def __new__(cls, path: str | Path, kind: str) -> TypedDir:
        obj = super().__new__(cls, str(path))
        obj.kind = kind
        return obj


def _usable(m: ModelFile) -> bool:
    return not any(p.code in ("corrupt", "unreadable") for p in m.problems)


def read_library(bundle: Bundle, extra_dirs: list[str] | tuple[str, ...] = ()) -> LibraryView:
    typed = [d for d in extra_dirs if isinstance(d, TypedDir)]
    files = scan(bundle, [d for d in extra_dirs if not isinstance(d, TypedDir)], with_hashes=False)
    cache = HashCache.for_bundle(bundle)
    usable = [m for m in files if _usable(m)]
    view = LibraryView(
        checkpoints=[_checkpoint(m, cache) for m in usable if m.folder == "checkpoint" and m.type == "checkpoint"],
        loras={m.path.stem.lower(): m.path for m in usable if m.type == "lora"},
        vaes={m.path.name: m.path for m in usable if m.type == "vae"},
        embeddings={m.path.stem: m.path for m in usable if m.type == "embedding"},
        upscalers_dir=bundle.models_dir / "ESRGAN",
    )
    return _with_typed(bundle, view, typed, cache) if typed else view


def _typed_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if format_of(root) else []
    found: list[Path] = []
    for here, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(here)
        found += [base / n for n in sorted(names) if not n.startswith(".") and format_of(base / n)]
    return found


def _with_typed(bundle: Bundle, view: LibraryView, typed: list[TypedDir], cache: HashCache) -> LibraryView:
    checkpoints, loras, vaes = list(view.checkpoints), dict(view.loras), dict(view.vaes)
    embeddings, upscalers = dict(view.embeddings), None
    seen = {os.path.realpath(c.path) for c in checkpoints}
    for entry in typed:
        root = resolve_extra_dir(bundle, str(entry))
        if entry.kind == "upscaler":
            upscalers = upscalers or root
            continue
        for path in _typed_files(root):
            if entry.kind == "checkpoint" and os.path.realpath(path) not in seen:
                m = describe(path, shared=True)
                if _usable(m) and m.type == "checkpoint":
                    checkpoints.append(_checkpoint(m, cache))
                    seen.add(os.path.realpath(path))
            elif entry.kind == "lora":
                loras.setdefault(path.stem.lower(), path)
            elif entry.kind == "vae":
                if root.is_file():  # --vae-path names this very file: it wins over a namesake in models/VAE
                    vaes[path.name] = path
                else:
                    vaes.setdefault(path.name, path)
            elif entry.kind == "embedding":
                embeddings.setdefault(path.stem, path)
    return replace(view, checkpoints=checkpoints, loras=loras, vaes=vaes, embeddings=embeddings,
                   upscalers_dir=upscalers or view.upscalers_dir)  # fmt: skip


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # a broken link or a path the OS refuses: not the same file
        return False


def find_checkpoint(view: LibraryView, wanted: str, own_paths: tuple[Path, ...] = ()) -> Checkpoint:
    """The checkpoint a client names: only one in the library, or a path the runtime's own command line gave.

    Anything else is :class:`ModelNotFound` (the API answers 404): the API and the UI must not make the runtime
    open arbitrary files, since without a login any local process (or a web page, through DNS rebinding) can
    call them.
    """
    for c in view.checkpoints:
        if c.matches(wanted):
            return c
    if wanted.strip():
        path = Path(wanted.strip())
        for c in view.checkpoints:  # the library file by another spelling of its path
            if _same_file(c.path, path):
                return c
        inside = Path(wanted.split(" [")[0].strip())  # A1111 titles models in subfolders "sub/name.safetensors"
        if not inside.is_absolute() and ".." not in inside.parts:
            for c in view.checkpoints:
                if c.path.parts[-len(inside.parts) :] == inside.parts:
                    return c
        if any(_same_file(own, path) for own in own_paths) and path.exists():
            return describe_path(path)
        if path.is_absolute() or len(path.parts) > 1:  # said the same whether the file exists or not
            raise ModelOutsideLibrary(wanted.strip())
    names = ", ".join(c.path.name for c in view.checkpoints[:8]) or "-"
    raise ModelNotFound(f"{wanted} (available: {names})")


def describe_path(path: Path) -> Checkpoint:
    """A checkpoint given by path, outside the library folders."""
    if path.is_dir():
        d: Detection = detect_diffusers(path)
        return Checkpoint(path, "diffusers", d.architecture or None, d.v_prediction)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "safetensors":
        d = detect_header(read_header(path))
        return Checkpoint(path, fmt, d.architecture or None, d.v_prediction)
    return Checkpoint(path, fmt, None, None)


@dataclass
class LoadedModel:
    checkpoint: Checkpoint
    pipe: Any  # a StableDiffusion(XL)Pipeline; diffusers types its components dynamically
    architecture: str  # sd15 | sd2 | sd2-v | sdxl | unknown
    v_prediction: bool
    load_seconds: float
    is_demo: bool = False
    scheduler_config: dict[str, Any] = field(default_factory=dict)  # the checkpoint's own, before any sampler

    def __post_init__(self) -> None:
        if not self.scheduler_config:
            self.scheduler_config = dict(self.pipe.scheduler.config)

    @property
    def is_sdxl(self) -> bool:
        return self.architecture == "sdxl"


def _pipeline_class(architecture: str) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if architecture == "sdxl" else StableDiffusionPipeline


def config_dir_for(configs_root: Path, architecture: str) -> Path:
    """The architecture's config folder, written from the shipped data first when it is missing (no network)."""
    from launcher.models.configs import ensure_config_folders

    folder = configs_root / architecture
    if not (folder / "model_index.json").is_file():
        try:
            ensure_config_folders(configs_root, [architecture])
        except (OSError, ValueError) as e:
            log.warning("could not write the %s config folder: %s", architecture, e)
    if not (folder / "model_index.json").is_file():
        raise ArchitectureConfigMissing(str(folder), arch=architecture)
    return folder


def check_loadable(
    ckpt: Checkpoint, configs_root: Path, *, allow_pickle: bool = False, architecture: str | None = None
) -> str:
    """What refuses ``ckpt`` before any weight is read; returns its architecture (``unknown`` for a folder)."""
    arch = architecture or ckpt.architecture or "unknown"
    if arch.startswith("unknown"):
        arch = "unknown"
    if ckpt.format in ("diffusers", "demo"):
        return arch
    if ckpt.format in PICKLE_FORMATS and not allow_pickle:
        raise PickleNotAllowed(ckpt.path.name)
    if arch == "unknown":
        raise ModelLoadFailed("the architecture could not be recognised from its weights", model=ckpt.path.name)
    config_dir_for(configs_root, arch)
    return arch


def load_checkpoint(
    ckpt: Checkpoint,
    configs_root: Path,
    *,
    allow_pickle: bool = False,
    architecture: str | None = None,
    dtype: Any = None,
) -> LoadedModel:
    """Load ``ckpt`` on the CPU (the caller places it); never touches the network."""
    arch = check_loadable(ckpt, configs_root, allow_pickle=allow_pickle, architecture=architecture)
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        if ckpt.format == "diffusers":
            from diffusers import DiffusionPipeline

            pipe = DiffusionPipeline.from_pretrained(
                str(ckpt.path), safety_checker=None, requires_safety_checker=False, feature_extractor=None, **kwargs
            )
            if arch == "unknown":
                arch = "sdxl" if hasattr(pipe, "text_encoder_2") else "sd15"
        else:
            config = config_dir_for(configs_root, arch)
            # The feature extractor only feeds the safety checker, which is off; loading it makes transformers 5 warn
            # "CLIPImageProcessor requires torchvision" where there is none (the CPU pack without its torchvision).
            extra: dict[str, Any] = {"feature_extractor": None}
            if arch != "sdxl":
                extra.update(safety_checker=None, requires_safety_checker=False)
            # diffusers reads pickles with torch.load(weights_only=True) itself; allow_pickle only opens the gate.
            extra.update(single_file_overrides(ckpt.path, config, kwargs))  # an inpainting UNet (runtime/inpaint)
            pipe = _pipeline_class(arch).from_single_file(str(ckpt.path), config=str(config), **extra, **kwargs)
    except (PickleNotAllowed, ArchitectureConfigMissing, ModelLoadFailed):
        raise
    except Exception as e:  # diffusers/safetensors raise many types; the user needs one message
        log.exception("loading %s failed", ckpt.path)
        raise ModelLoadFailed(f"{type(e).__name__}: {e}", model=ckpt.path.name) from e
    v_pred = bool(ckpt.v_prediction) or arch == "sd2-v"
    seconds = time.perf_counter() - started
    return LoadedModel(ckpt, pipe, arch, v_pred, seconds)


def demo_model() -> LoadedModel:
    import diffusers  # noqa: F401 - imported first, so the time reported is the model's, not the imports'

    from runtime.demo import DEMO_NAME, build_demo_pipeline

    started = time.perf_counter()
    pipe = build_demo_pipeline()
    ckpt = Checkpoint(Path(DEMO_NAME), "demo", "sd15", False)
    return LoadedModel(ckpt, pipe, "sd15", False, time.perf_counter() - started, is_demo=True)
