"""The shipped model catalog, ``models/catalog.toml``, as checked, typed records.

Each entry names one file and where it comes from: a Hugging Face repository
(``repo`` + ``file`` + optional ``revision``) or a direct ``url``, optionally a ModelScope copy.  It
carries its type, architecture, size and, when it was checked against a
reliable source, its sha256; otherwise the download engine takes the hash
from the Hugging Face LFS metadata.  Exactly one entry is ``default``: the
model fetched on first start when the library is empty.

:func:`load_model_catalog` reports every problem of a broken catalog at once
(entry, key and what is wrong), like ``config validate`` does.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from bootstrap.errors import ExitCode, YijianError
from bootstrap.layout import Bundle
from launcher.models.architecture import ARCHITECTURES, KINDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")

# A1111's folder for each type, under models/.
FOLDER_BY_TYPE: dict[str, str] = {
    "checkpoint": "Stable-diffusion",
    "lora": "Lora",
    "vae": "VAE",
    "embedding": "embeddings",
    "upscaler": "ESRGAN",
    # Only from links (Civitai types); the catalog's entries stay of the kinds above.
    "controlnet": "ControlNet",
    "hypernetwork": "hypernetworks",
}

_ID = re.compile(r"[a-z0-9][a-z0-9.-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_KEYS = {
    "id", "aliases", "name_zh", "name_en", "description_zh", "description_en", "type", "architecture",
    "repo", "file", "revision", "url", "modelscope", "save_as", "size", "sha256",
    "license", "default", "verified",
}  # fmt: skip


class ModelCatalogInvalid(YijianError):
    code = "MODEL_CATALOG_INVALID"
    exit_code = ExitCode.FAILURE
    zh = "模型目录 {file} 有 {count} 处错误：\n{listing}"
    en = "The model catalog {file} has {count} problem(s):\n{listing}"
    hint_zh = "这个文件随一键发布；如果改过它，请按上面的提示修正，或从发布包中恢复原文件。"
    hint_en = "This file ships with Yijian; if you edited it, fix it as shown or restore the original."


class UnknownModel(YijianError):
    code = "MODEL_UNKNOWN"
    exit_code = ExitCode.USAGE
    zh = "模型目录里没有「{name}」。{suggestion_zh}"
    en = "There is no model {name!r} in the catalog. {suggestion_en}"
    hint_zh = "运行 ./start.sh models catalog 查看可下载的模型，或直接给出一个 https:// 地址。"
    hint_en = "Run ./start.sh models catalog to see what can be downloaded, or give an https:// URL."


@dataclass(frozen=True)
class HfSource:
    repo: str
    file: str  # path inside the repository
    revision: str = "main"

    def resolve_url(self, endpoint: str) -> str:
        """The file's download URL on a Hugging Face endpoint (``https://hf-mirror.com`` …)."""
        return (
            f"{endpoint.rstrip('/')}/{self.repo}/resolve/{quote(self.revision, safe='')}/{quote(self.file, safe='/')}"
        )


@dataclass(frozen=True)
class ModelScopeSource:
    repo: str
    file: str
    verified: bool = False  # the copy's presence and content were not checked
    # A different file (another precision or pruning of the same weights): its own sha256, saved under its own
    # name.  Empty: the very same file as the entry's, checked against the entry's sha256.
    sha256: str = ""

    @property
    def own_file(self) -> bool:
        return bool(self.sha256)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    type: str  # one of KINDS
    architecture: str  # one of ARCHITECTURES, or "" for upscalers
    filename: str  # the name it is saved under
    size: int  # bytes
    license: str
    hf: HfSource | None = None
    url: str = ""
    modelscope: ModelScopeSource | None = None
    sha256: str = ""  # empty: take it from the Hugging Face LFS metadata at download time
    default: bool = False
    verified: bool = True
    aliases: tuple[str, ...] = ()

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name_en

    def description(self, lang: str) -> str:
        return self.description_zh if lang == "zh" else self.description_en

    @property
    def folder(self) -> str:
        """The A1111 folder under ``models/`` this type belongs in (``Stable-diffusion``, ``Lora`` …)."""
        return FOLDER_BY_TYPE[self.type]

    def destination(self, models_dir: Path) -> Path:
        """Where the file goes: ``models/<folder>/<filename>``."""
        return models_dir / self.folder / self.filename

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name(lang),
            "description": self.description(lang),
            "type": self.type,
            "architecture": self.architecture or None,
            "filename": self.filename,
            "folder": self.folder,
            "size": self.size,
            "sha256": self.sha256 or None,
            "source": {"repo": self.hf.repo, "file": self.hf.file, "revision": self.hf.revision}
            if self.hf
            else {"url": self.url},
            "modelscope": {"repo": self.modelscope.repo, "file": self.modelscope.file} if self.modelscope else None,
            "license": self.license,
            "default": self.default,
            "verified": self.verified,
        }


def _squash(text: str) -> str:
    return re.sub(r"[\s_.\-]+", "", text.strip().lower())


@dataclass(frozen=True)
class ModelCatalog:
    entries: tuple[CatalogEntry, ...]
    path: Path

    def get(self, model_id: str) -> CatalogEntry | None:
        return next((e for e in self.entries if e.id == model_id), None)

    def default(self) -> CatalogEntry:
        return next(e for e in self.entries if e.default)  # the loader guarantees exactly one

    def _names(self, entry: CatalogEntry) -> tuple[str, ...]:
        return (
            entry.id,
            *entry.aliases,
            entry.filename,
            PurePosixPath(entry.filename).stem,
            entry.name_en,
            entry.name_zh,
        )

    def find(self, name: str) -> CatalogEntry | None:
        """The entry ``name`` means: its id, an alias, its file name or its name, ignoring case, spaces, ``-_.``."""
        if not name.strip():
            return None
        exact = self.get(name.strip())
        if exact is not None:
            return exact
        key = _squash(name)
        return next((e for e in self.entries if key in {_squash(n) for n in self._names(e)}), None)

    def suggest(self, name: str) -> str | None:
        """The id a mistyped name most likely meant (difflib), or None."""
        words: dict[str, str] = {}
        for entry in self.entries:
            words.update({_squash(n): entry.id for n in self._names(entry) if _squash(n)})
        near = get_close_matches(_squash(name), list(words), n=1, cutoff=0.6)
        return words[near[0]] if near else None

    def resolve(self, name: str) -> CatalogEntry:
        """Like :meth:`find`, but raise :class:`UnknownModel` (with a "did you mean") when nothing matches."""
        entry = self.find(name)
        if entry is not None:
            return entry
        guess = self.suggest(name)
        raise UnknownModel(
            name=name,
            suggestion_zh=f"你是不是想要「{guess}」？" if guess else "",
            suggestion_en=f"Did you mean {guess!r}?" if guess else "",
        )


def catalog_path(bundle: Bundle) -> Path:
    """The shipped catalog: ``models/catalog.toml`` beside the code."""
    return bundle.code / "models" / "catalog.toml"


class _Checker:
    """Collects every problem of one entry, then builds it if there were none."""

    def __init__(self, raw: dict[str, Any], where: str, problems: list[str]) -> None:
        self.raw, self.where, self.problems = raw, where, problems

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}: {key}: {message}")

    def text(self, key: str, *, required: bool = True) -> str:
        value = self.raw.get(key, "")
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(key, "required, a non-empty string" if required else "must be a string")
            return ""
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return default
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value and value not in allowed:
            near = get_close_matches(value, allowed, n=1)
            self.fail(
                key, f"{value!r} is not one of {', '.join(allowed)}" + (f"; did you mean {near[0]!r}?" if near else "")
            )
        return value


def _source(c: _Checker) -> tuple[HfSource | None, str, ModelScopeSource | None]:
    raw = c.raw
    hf = None
    url = c.text("url", required=False)
    if "repo" in raw:
        repo, file = c.text("repo"), c.text("file")
        if repo and not _REPO.fullmatch(repo):
            c.fail("repo", f"{repo!r} is not an owner/name repository id")
        hf = HfSource(repo, file, c.text("revision", required=False) or "main")
        if url:
            c.fail("url", "give either repo + file or url, not both")
    elif url:
        if urlsplit(url).scheme != "https":
            c.fail("url", "must be an https:// URL")
    else:
        c.fail("repo", "every entry needs repo + file (Hugging Face) or url")
    ms = None
    if "modelscope" in raw:
        table = raw["modelscope"]
        if (
            not isinstance(table, dict)
            or not isinstance(table.get("repo"), str)
            or not isinstance(table.get("file"), str)
        ):
            c.fail("modelscope", 'must be a table { repo = "...", file = "...", verified = true|false }')
        elif "sha256" in table and not (isinstance(table["sha256"], str) and _SHA256.fullmatch(table["sha256"])):
            c.fail("modelscope", "sha256 must be 64 lower-case hex digits")
        else:
            ms = ModelScopeSource(table["repo"], table["file"], table.get("verified") is True,
                                  str(table.get("sha256", "")))  # fmt: skip
    return hf, url, ms


def _entry(raw: Any, index: int, problems: list[str]) -> CatalogEntry | None:
    if not isinstance(raw, dict):
        problems.append(f"[[model]] #{index + 1}: must be a table")
        return None
    where = f"[[model]] {raw.get('id') or '#' + str(index + 1)}"
    c = _Checker(raw, where, problems)
    before = len(problems)
    for key in sorted(set(raw) - _KEYS):
        near = get_close_matches(key, sorted(_KEYS), n=1)
        c.fail(key, "unknown key" + (f"; did you mean {near[0]!r}?" if near else ""))
    model_id = c.text("id")
    if model_id and not _ID.fullmatch(model_id):
        c.fail("id", f"{model_id!r} must be lower-case letters, digits, '.' and '-'")
    kind = c.choice("type", KINDS)
    arch = c.text("architecture", required=kind != "upscaler")
    if arch and arch not in ARCHITECTURES:
        c.fail("architecture", f"{arch!r} is not one of {', '.join(ARCHITECTURES)}")
    hf, url, ms = _source(c)
    remote_name = PurePosixPath(hf.file if hf else urlsplit(url).path).name
    filename = c.text("save_as", required=False) or remote_name
    if filename and ("/" in filename or "\\" in filename or not filename.endswith(MODEL_FILE_SUFFIXES)):
        c.fail("save_as", f"{filename!r} must be a bare file name ending in {', '.join(MODEL_FILE_SUFFIXES)}")
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        c.fail("size", "required, a positive number of bytes")
    sha256 = c.text("sha256", required=False)
    if sha256 and not _SHA256.fullmatch(sha256):
        c.fail("sha256", "must be 64 lower-case hex digits")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        c.fail("aliases", "must be a list of strings")
        aliases = []
    fields = {k: c.text(k) for k in ("name_zh", "name_en", "description_zh", "description_en", "license")}
    default, verified = c.flag("default", False), c.flag("verified", True)
    if len(problems) > before:
        return None
    assert isinstance(size, int)
    return CatalogEntry(
        id=model_id, type=kind, architecture=arch, filename=filename, size=size, hf=hf, url=url, modelscope=ms,
        sha256=sha256, default=default, verified=verified, aliases=tuple(aliases), **fields,
    )  # fmt: skip


def load_model_catalog(path: Path) -> ModelCatalog:
    """Load and check ``path``; raise :class:`ModelCatalogInvalid` listing every problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelCatalogInvalid(file=str(path), count=1, listing=f"  {exc}") from exc
    problems: list[str] = []
    raw_entries = data.get("model", [])
    if not isinstance(raw_entries, list) or not raw_entries:
        problems.append("[[model]]: the catalog has no entries")
        raw_entries = []
    entries = [e for i, raw in enumerate(raw_entries) if (e := _entry(raw, i, problems)) is not None]
    seen: set[str] = set()
    for entry in entries:
        for name in (entry.id, *entry.aliases):
            if name in seen:
                problems.append(f"[[model]] {entry.id}: id/alias {name!r} is used twice")
            seen.add(name)
    defaults = [e.id for e in entries if e.default]
    if len(defaults) != 1 and len(entries) == len(raw_entries):
        problems.append(f"default: exactly one entry must have default = true, found {len(defaults)} {defaults}")
    for entry in entries:
        if entry.default and entry.type != "checkpoint":
            problems.append(f"[[model]] {entry.id}: default: the default model must be a checkpoint")
    if problems:
        listing = "\n".join("  " + p for p in problems)
        raise ModelCatalogInvalid(file=str(path), count=len(problems), listing=listing)
    return ModelCatalog(tuple(entries), path)
