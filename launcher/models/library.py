"""The model library: what is in ``models/`` and in shared A1111 / 秋叶 / ComfyUI model folders.

:func:`scan` walks the bundle's A1111-style folders (``Stable-diffusion``,
``Lora``, ``VAE``, ``embeddings``, ``ESRGAN``) and every extra folder from
``models.extra_dirs`` - an A1111 or 秋叶 ``models`` folder (or the web UI
folder holding it), shared in place and never written to - and reports for
each model its format, what it is and for which architecture (from the
safetensors header, never by loading it), its size, optionally its hashes
(cached in ``cache/hashes.json``), and its problems: a pickle checkpoint
that can run code when loaded, a file that is really an HTML page, a Git LFS
pointer or cut short, or a model in the wrong folder.

The download engine's working files (``*.part``, ``*.part.json``,
``*.part.log``, ``*.lock``), hidden files and ``.gitkeep`` are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.layout import Bundle
from launcher.models.architecture import Detection, detect_diffusers, detect_header, is_diffusers_folder
from launcher.models.catalog import FOLDER_BY_TYPE, CatalogEntry, ModelCatalog, catalog_path, load_model_catalog
from launcher.models.hashes import HashCache, legacy_model_hash, sha256_file, short_hash
from launcher.models.safetensors_header import SNIFF_BYTES, HeaderError, Problem, read_header, sniff_problem

FORMAT_BY_SUFFIX = {".safetensors": "safetensors", ".ckpt": "ckpt", ".pt": "pt", ".pth": "pth", ".bin": "bin"}
IGNORED_SUFFIXES = (".part", ".part.json", ".part.log", ".lock")

# Subfolder names (lower case) of A1111, 秋叶 and ComfyUI model folders, and the type they hold.
SUBFOLDER_TYPES: dict[str, str] = {
    "stable-diffusion": "checkpoint",
    "checkpoints": "checkpoint",
    "lora": "lora",
    "loras": "lora",
    "lycoris": "lora",
    "vae": "vae",
    "embeddings": "embedding",
    "esrgan": "upscaler",
    "realesrgan": "upscaler",
    "upscale_models": "upscaler",
}
TYPE_ORDER = tuple(FOLDER_BY_TYPE)


@dataclass(frozen=True)
class FileProblem:
    """Something wrong with a model file.  ``code`` is stable; ``reason`` refines ``corrupt``."""

    code: str  # pickle | corrupt | wrong-folder | unreadable | missing | hash-mismatch
    en: str
    zh: str
    reason: str = ""  # for corrupt: a safetensors_header.Problem value ("html", "truncated" ...)

    def message(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    @property
    def code_with_reason(self) -> str:
        """``pickle``, ``wrong-folder`` … or ``corrupt:html``, ``corrupt:truncated`` …: for --json output."""
        return f"{self.code}:{self.reason}" if self.reason else self.code


PICKLE_PROBLEM = FileProblem(
    "pickle",
    "pickle file: can run code when loaded; prefer a .safetensors version",
    "pickle 格式的文件：加载时可能运行其中的代码；请尽量换用 .safetensors 版本",
)


def corrupt(problem: Problem) -> FileProblem:
    return FileProblem("corrupt", f"corrupt: {problem.en}", f"文件已损坏：{problem.zh}", problem.value)


@dataclass(frozen=True)
class ModelRoot:
    """One folder scanned for one type of model."""

    path: Path
    type: str
    shared: bool  # from models.extra_dirs: read by Yijian, never written


@dataclass(frozen=True)
class ModelFile:
    path: Path
    folder: str  # the type the folder is for (checkpoint, lora, vae, embedding, upscaler)
    type: str  # what the file is, when recognised; otherwise the folder's type
    format: str  # safetensors | ckpt | pt | pth | bin | diffusers
    architecture: str | None  # sd15 | sd2 | sd2-v | sdxl | "unknown (...)" | None when it does not apply
    size: int
    sha256: str | None = None
    short_hash: str | None = None  # A1111's "Model hash" (first 10 hex of the sha256)
    legacy_hash: str | None = None  # A1111's old 8-hex model hash
    problems: tuple[FileProblem, ...] = ()
    shared: bool = False
    v_prediction: bool | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "path": str(self.path),
            "folder": self.folder,
            "type": self.type,
            "format": self.format,
            "architecture": self.architecture,
            "size": self.size,
            "sha256": self.sha256,
            "short_hash": self.short_hash,
            "legacy_hash": self.legacy_hash,
            "problems": [p.message(lang) for p in self.problems],
            "problem_codes": [p.code_with_reason for p in self.problems],
            "shared": self.shared,
            "v_prediction": self.v_prediction,
        }


@dataclass(frozen=True)
class Verification:
    path: Path
    expected: str
    actual: str

    @property
    def ok(self) -> bool:
        return self.actual == self.expected.strip().lower()


def _extra_roots(folder: Path) -> Iterator[ModelRoot]:
    """An A1111/秋叶 ``models`` folder, its web UI folder, or a ComfyUI ``models`` folder, shared."""
    models = folder / "models" if (folder / "models").is_dir() else folder  # given the web UI folder itself
    yield from (ModelRoot(path, kind, True) for path, kind in _typed_children(models))
    embeddings = models.parent / "embeddings"  # A1111 keeps embeddings beside models/, not in it
    if models.name.lower() == "models" and embeddings.is_dir():
        yield ModelRoot(embeddings, "embedding", True)


def _typed_children(folder: Path) -> list[tuple[Path, str]]:
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    return [(p, SUBFOLDER_TYPES[p.name.lower()]) for p in children if p.name.lower() in SUBFOLDER_TYPES]


def resolve_extra_dir(bundle: Bundle, raw: str | Path) -> Path:
    """An extra model folder from the config: ``~`` expanded, relative paths taken from the bundle root."""
    path = Path(os.path.expanduser(str(raw)))
    return path if path.is_absolute() else bundle.root / path


def model_roots(bundle: Bundle, extra_dirs: Sequence[str | Path] = ()) -> list[ModelRoot]:
    """The folders a scan walks: the bundle's own, then each existing extra folder's typed subfolders."""
    roots = [ModelRoot(bundle.models_dir / folder, kind, False) for kind, folder in FOLDER_BY_TYPE.items()]
    for raw in extra_dirs:
        folder = resolve_extra_dir(bundle, raw)
        if folder.is_dir():
            roots.extend(_extra_roots(folder))
    return roots


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, format) of every model under ``root``; a diffusers folder is one model, not descended into."""
    seen: set[str] = set()
    for here, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add(real)
        base = Path(here)
        if base != root and is_diffusers_folder(base):
            dirs[:] = []
            yield base, "diffusers"
            continue
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for name in sorted(files):
            fmt = FORMAT_BY_SUFFIX.get(Path(name).suffix.lower())
            if fmt and not _skipped(name):
                yield base / name, fmt


def _inspect_file(path: Path, fmt: str) -> tuple[Detection | None, list[FileProblem]]:
    if fmt == "safetensors":
        try:
            return detect_header(read_header(path)), []
        except HeaderError as exc:
            return None, [corrupt(exc.problem)]
    with open(path, "rb") as fh:
        first = fh.read(SNIFF_BYTES)
    if not first:
        return None, [corrupt(Problem.EMPTY)]
    wrong = sniff_problem(first)
    if wrong is not None:
        return None, [corrupt(wrong)]
    return None, [PICKLE_PROBLEM]


def _folder_size(folder: Path) -> int:
    return sum(
        (Path(here) / name).stat().st_size
        for here, _dirs, files in os.walk(folder)
        for name in files
        if not _skipped(name)
    )


def _describe(
    path: Path, fmt: str, root: ModelRoot, cache: HashCache | None, progress: Callable[[Path, int], None] | None = None
) -> ModelFile:
    problems: list[FileProblem] = []
    detection: Detection | None = None
    size = 0
    sha = None
    legacy = None
    try:
        if fmt == "diffusers":
            detection, size = detect_diffusers(path), _folder_size(path)
        else:
            size = path.stat().st_size
            detection, problems = _inspect_file(path, fmt)
            if cache is not None:
                sha = cache.sha256(path, (lambda n: progress(path, n)) if progress else None)
                legacy = legacy_model_hash(path)
    except OSError as exc:
        problems.append(
            FileProblem("unreadable", f"cannot read: {exc.strerror or exc}", f"无法读取：{exc.strerror or exc}")
        )
    kind = detection.kind if detection and detection.kind else root.type
    if kind != root.type:
        folder = FOLDER_BY_TYPE[kind]
        problems.append(
            FileProblem(
                "wrong-folder",
                f"a {kind} in the {FOLDER_BY_TYPE[root.type]} folder: move it to {folder}",
                f"这是 {kind} 模型，却放在 {FOLDER_BY_TYPE[root.type]} 文件夹里：请移到 {folder}",
            )
        )
    return ModelFile(
        path=path,
        folder=root.type,
        type=kind,
        format=fmt,
        architecture=detection.label if detection else None,
        size=size,
        sha256=sha,
        short_hash=short_hash(sha) if sha else None,
        legacy_hash=legacy,
        problems=tuple(problems),
        shared=root.shared,
        v_prediction=detection.v_prediction if detection else None,
    )


def scan(
    bundle: Bundle,
    extra_dirs: Sequence[str | Path] = (),
    *,
    with_hashes: bool,
    cache: HashCache | None = None,
    progress: Callable[[Path, int], None] | None = None,
) -> list[ModelFile]:
    """Every model in the bundle's folders and the extra folders, each file once, sorted by type then path.

    With ``with_hashes``, each file's sha256 comes from ``cache`` (default:
    the bundle's ``cache/hashes.json``) while the file is unchanged, and is
    computed otherwise; ``progress(path, nbytes)`` follows the hashing.
    """
    hash_cache = (cache or HashCache.for_bundle(bundle)) if with_hashes else None
    found: dict[str, ModelFile] = {}
    for root in model_roots(bundle, extra_dirs):
        if not root.path.is_dir():
            continue
        for path, fmt in _walk(root.path):
            key = os.path.realpath(path)
            if key not in found:
                found[key] = _describe(path, fmt, root, hash_cache, progress)
    return sorted(found.values(), key=lambda m: (TYPE_ORDER.index(m.folder), m.shared, str(m.path).lower()))


def format_of(path: Path) -> str | None:
    """``safetensors``, ``ckpt`` … for a model file, ``diffusers`` for a pipeline folder, None otherwise."""
    if path.is_dir():
        return "diffusers" if is_diffusers_folder(path) else None
    return FORMAT_BY_SUFFIX.get(path.suffix.lower())


def describe(path: Path, *, cache: HashCache | None = None, shared: bool = False) -> ModelFile:
    """Describe one model file or diffusers folder anywhere (hashed when a cache is given).

    Its folder type comes from the parent folder's name (``Lora``, ``checkpoints`` …),
    else from what the file turns out to be, else ``checkpoint``.
    """
    fmt = format_of(path)
    if fmt is None:
        raise ValueError(f"not a model file: {path}")
    folder_type = SUBFOLDER_TYPES.get(path.parent.name.lower())
    if folder_type is None:
        probe = _describe(path, fmt, ModelRoot(path.parent, "checkpoint", shared), None)
        folder_type = probe.type
    return _describe(path, fmt, ModelRoot(path.parent, folder_type, shared), cache)


def verify(path: Path, expected_sha256: str, *, cache: HashCache | None = None) -> Verification:
    """Hash ``path`` in full (never trusting a cache) and compare; a given cache learns the result."""
    actual = sha256_file(path)
    if cache is not None:
        cache.put(path, actual)
    return Verification(path, expected_sha256, actual)


_FAILING = ("corrupt", "unreadable")


def verify_files(
    bundle: Bundle,
    paths: Sequence[str | Path] | None = None,
    *,
    extra_dirs: Sequence[str | Path] = (),
    catalog: ModelCatalog | None = None,
    lang: str = "en",
) -> list[dict[str, Any]]:
    """Check model files in full: readable, not corrupt, and the catalog's sha256 where it names one.

    ``paths`` None means every model :func:`scan` finds.  Each file is hashed
    again (the hash cache is refreshed, never trusted).  One dict per file:
    ``path, ok, sha256, expected_sha256, catalog_id, problems, problem_codes``;
    ``ok`` is false for a missing, unreadable or corrupt file or a hash that
    differs from the catalog's.  Pickle files and files in the wrong folder
    pass with their problem listed.
    """
    models = catalog if catalog is not None else load_model_catalog(catalog_path(bundle))
    cache = HashCache.for_bundle(bundle)
    if paths is None:
        files: list[ModelFile | Path] = list(scan(bundle, extra_dirs, with_hashes=False))
    else:
        wanted = [Path(p) for p in paths]
        files = [describe(p) if p.exists() and format_of(p) else p for p in wanted]
    results = []
    for item in files:
        if isinstance(item, Path):
            missing = FileProblem("missing", "not a model file or folder", "不是模型文件或文件夹")
            results.append(_verdict(item, None, None, [missing], lang))
            continue
        problems = list(item.problems)
        entry = next((e for e in models.entries if e.filename == item.name and e.type == item.type), None)
        sha = None
        if item.format != "diffusers" and not any(p.code == "unreadable" for p in problems):
            sha = sha256_file(item.path)
            cache.put(item.path, sha)
            if entry is not None and entry.sha256 and sha != entry.sha256:
                problems.append(
                    FileProblem(
                        "hash-mismatch",
                        f"sha256 differs from the catalog's {entry.id} ({entry.sha256[:10]}…)",
                        f"sha256 与模型目录中 {entry.id} 的不一致（{entry.sha256[:10]}…）",
                    )
                )
        results.append(_verdict(item.path, sha, entry, problems, lang))
    return results


def _verdict(
    path: Path, sha: str | None, entry: CatalogEntry | None, problems: list[FileProblem], lang: str
) -> dict[str, Any]:
    return {
        "path": str(path),
        "ok": not any(p.code in (*_FAILING, "missing", "hash-mismatch") for p in problems),
        "sha256": sha,
        "expected_sha256": (entry.sha256 or None) if entry else None,
        "catalog_id": entry.id if entry else None,
        "problems": [p.message(lang) for p in problems],
        "problem_codes": [p.code_with_reason for p in problems],
    }
