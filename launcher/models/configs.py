"""The per-architecture config folders single-file checkpoints load with: ``cache/configs/<arch>``.

The runtime loads a single ``.safetensors`` checkpoint offline, always with
``from_single_file(ckpt, config=cache/configs/<arch>)``.  Each folder holds one
diffusers pipeline's configs and tokenizer and no weights.  They come from the
repository, never from the network:

* the small JSON configs are data files in ``models/configs/<arch>/`` (what
  each one says and where its facts come from: ``models/architectures.toml``);
* the CLIP tokenizer's ``vocab.json`` and ``merges.txt``, the same for every
  architecture, are derived exactly from ``models/configs/clip/bpe_simple_vocab_16e6.txt.gz``,
  the BPE table OpenAI's CLIP publishes (MIT) and the PyPI package
  ``open_clip_torch`` ships; :func:`clip_tokenizer_files` is that derivation.

:func:`ensure_configs` writes ``cache/configs/<arch>`` from them when it is
missing or was written from other data (its ``.complete`` marker names a
digest of the shipped files), through a ``cache/configs/.<arch>.partial-*`` folder
of the writer's own renamed into place, so a folder that looks complete always is.  No network, no
offline check: the folders are there whatever the network does.

Standard library only; no torch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bootstrap.i18n import pick
from bootstrap.layout import CODE_ROOT, Bundle
from launcher.models.architecture import ARCHITECTURES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "MARKER",
    "ArchSpec",
    "architectures_in_library",
    "architectures_path",
    "clip_tokenizer_files",
    "config_folder",
    "configs_root",
    "ensure_config_folders",
    "ensure_configs",
    "load_architectures",
    "missing_architectures",
    "shipped_folder",
]

MARKER = ".complete"  # written last: a folder without it is not complete
PARTIAL_SUFFIX = ".partial"
STALE_SECONDS = 600.0  # a partial folder this old was left by a writer that died
SHIPPED = "models/configs"  # below the code root
BPE_FILE = "clip/bpe_simple_vocab_16e6.txt.gz"
TOKENIZER_FILES = ("vocab.json", "merges.txt")  # derived, written into each tokenizer folder
# CLIP's BPE: 256 byte symbols, 256 end-of-word symbols, 48894 merges, 2 special tokens = 49408 ids
BPE_MERGES = 49152 - 256 - 2
SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


# -- what is shipped --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchSpec:
    """One architecture's config folder: the shipped files and which folders get the derived tokenizer."""

    id: str
    source: str  # the Hugging Face repository whose published configs these are (for reference; never fetched)
    files: tuple[str, ...]  # shipped under models/configs/<id>/
    tokenizers: tuple[str, ...]  # folders that also get vocab.json and merges.txt


def architectures_path(bundle: Bundle) -> Path:
    """The shipped list: ``models/architectures.toml`` beside the code."""
    return bundle.code / "models" / "architectures.toml"


def shipped_folder(bundle: Bundle, arch: str) -> Path:
    """``models/configs/<arch>``: the shipped JSON configs (no tokenizer vocabulary)."""
    return bundle.code / SHIPPED / arch


def configs_root(bundle: Bundle) -> Path:
    return bundle.cache_dir / "configs"


def config_folder(bundle: Bundle, arch: str) -> Path:
    """``cache/configs/<arch>``: what the runtime passes as ``config=``."""
    return configs_root(bundle) / arch


def _safe_relative(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path and p.name != MARKER


def load_architectures(path: Path) -> dict[str, ArchSpec]:
    """Parse ``architectures.toml``; a malformed file is a packaging bug (ValueError naming it)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    specs: dict[str, ArchSpec] = {}
    for i, raw in enumerate(data.get("architecture", [])):
        where = f"{path}: architecture #{i + 1}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: not a table")
        arch, source, files, tokenizers = raw.get("id"), raw.get("source"), raw.get("files"), raw.get("tokenizers")
        if arch not in ARCHITECTURES:
            raise ValueError(f"{where}: id must be one of {', '.join(ARCHITECTURES)}, not {arch!r}")
        if not isinstance(source, str) or source.count("/") != 1:
            raise ValueError(f"{where} ({arch}): source must be namespace/name")
        if not isinstance(files, list) or not all(isinstance(f, str) and _safe_relative(f) for f in files):
            raise ValueError(f"{where} ({arch}): files must be a list of relative paths")
        if "model_index.json" not in files:
            raise ValueError(f"{where} ({arch}): files must include model_index.json")
        if not isinstance(tokenizers, list) or not all(isinstance(t, str) and _safe_relative(t) for t in tokenizers):
            raise ValueError(f"{where} ({arch}): tokenizers must be a list of folder names")
        if arch in specs:
            raise ValueError(f"{where}: {arch} is listed twice")
        specs[arch] = ArchSpec(arch, source, tuple(dict.fromkeys(files)), tuple(dict.fromkeys(tokenizers)))
    return specs


# -- the CLIP tokenizer -----------------------------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's (and GPT-2's) byte -> printable character table, in CLIP's order.

    The printable Latin-1 bytes come first and map to themselves; the others follow
    in byte order, mapped to 256, 257, …
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    rest = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + i) for i, b in enumerate(rest)})
    return table


def clip_tokenizer_files(bpe_gz: Path) -> dict[str, bytes]:
    """``vocab.json`` and ``merges.txt`` of CLIP's tokenizer, derived from its BPE table.

    The ids follow CLIP's own construction: the 256 byte symbols, the same with
    ``</w>``, one token per merge in order, then the two special tokens; the
    first line of the table is a header and only the first 48894 merges are used.
    """
    lines = gzip.decompress(bpe_gz.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1 : 1 + BPE_MERGES]
    if len(merges) != BPE_MERGES or not all(len(m.split()) == 2 for m in merges):
        raise ValueError(f"{bpe_gz}: not CLIP's BPE table ({len(merges)} merges)")
    symbols = list(_bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *("".join(m.split()) for m in merges), *SPECIAL_TOKENS]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError(f"{bpe_gz}: the derived vocabulary has duplicate tokens")
    return {
        "vocab.json": json.dumps(vocab, ensure_ascii=False).encode("utf-8"),
        "merges.txt": ("#version: 0.2\n" + "\n".join(merges) + "\n").encode("utf-8"),
    }


# -- state on disk ----------------------------------------------------------------------------------------------------


def _digest(code: Path, spec: ArchSpec) -> str:
    """What the folder is written from: the shipped files, their names, and the BPE table."""
    shipped = code / SHIPPED
    h = hashlib.sha256()
    for rel in (*spec.files, *(f"{t}/" for t in spec.tokenizers)):
        h.update(rel.encode() + b"\0")
    for rel in spec.files:
        h.update((shipped / spec.id / rel).read_bytes() + b"\0")
    h.update((shipped / BPE_FILE).read_bytes())
    return h.hexdigest()


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _expected(spec: ArchSpec) -> list[str]:
    return [*spec.files, *(f"{t}/{f}" for t in spec.tokenizers for f in TOKENIZER_FILES)]


def _complete(code: Path, folder: Path, spec: ArchSpec) -> bool:
    """Written from the shipped data as it is now, with every file present."""
    marker = _read_marker(folder)
    if marker is None or marker.get("digest") != _digest(code, spec):
        return False
    return all((folder / f).is_file() for f in _expected(spec))


def _specs_for(code: Path, archs: Iterable[str], specs: Mapping[str, ArchSpec] | None) -> list[ArchSpec]:
    known = specs if specs is not None else load_architectures(code / "models" / "architectures.toml")
    out: list[ArchSpec] = []
    for arch in dict.fromkeys(archs):
        if arch not in known:
            raise ValueError(f"no config folder is defined for architecture {arch!r}")
        out.append(known[arch])
    return out


def missing_architectures(
    bundle: Bundle, archs: Iterable[str], *, specs: Mapping[str, ArchSpec] | None = None
) -> list[str]:
    """Those of ``archs`` (in order, once each) without a complete, current config folder."""
    found = _specs_for(bundle.code, archs, specs)
    return [s.id for s in found if not _complete(bundle.code, config_folder(bundle, s.id), s)]


def architectures_in_library(bundle: Bundle, extra_dirs: Sequence[str | Path] = ()) -> set[str]:
    """The architectures of the usable single-file checkpoints in the library (diffusers folders need none)."""
    from launcher.models.library import scan

    found: set[str] = set()
    for m in scan(bundle, extra_dirs, with_hashes=False):
        if m.folder != "checkpoint" or m.type != "checkpoint" or m.format == "diffusers":
            continue
        if any(p.code in ("corrupt", "unreadable") for p in m.problems):
            continue
        if m.architecture in ARCHITECTURES:
            found.add(m.architecture)
    return found


# -- writing a folder -------------------------------------------------------------------------------------------------


def _swap_in(partial: Path, final: Path) -> None:
    """Rename the finished folder into place; an older folder there is moved aside first, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(partial, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_folder(code: Path, final: Path, spec: ArchSpec, tokenizer: Mapping[str, bytes]) -> None:
    """Write into a folder of this process's own, then rename it into place (no lock: the runtime may write too).

    A leftover of a writer that was killed (older than :data:`STALE_SECONDS`) is removed first.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    for old in final.parent.glob(f".{final.name}{PARTIAL_SUFFIX}*"):
        try:
            if time.time() - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    partial = final.with_name(f".{final.name}{PARTIAL_SUFFIX}-{os.getpid()}-{threading.get_ident()}")
    try:
        for rel in spec.files:
            dest = partial / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(code / SHIPPED / spec.id / rel, dest)
        for folder in spec.tokenizers:
            for name, data in tokenizer.items():
                (partial / folder).mkdir(parents=True, exist_ok=True)
                (partial / folder / name).write_bytes(data)
        marker = {"architecture": spec.id, "source": spec.source, "digest": _digest(code, spec),
                  "files": _expected(spec), "from": "shipped"}  # fmt: skip
        (partial / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        if not _complete(code, final, spec):  # another writer may have finished first
            try:
                _swap_in(partial, final)
            except OSError:
                if not _complete(code, final, spec):
                    raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def ensure_configs(
    bundle: Bundle,
    archs: Iterable[str],
    *,
    specs: Mapping[str, ArchSpec] | None = None,
    lang: str = "en",
    say: Callable[[str], None] | None = None,
) -> list[Path]:
    """Make sure each of ``archs`` has its config folder; return the folders, in the order asked.

    Written from the shipped data (no network) when missing or out of date;
    nothing is written when every folder is current.  Raises OSError when the
    cache cannot be written, ValueError for an unknown architecture.
    """
    return ensure_config_folders(configs_root(bundle), archs, code=bundle.code, specs=specs, lang=lang, say=say)


def ensure_config_folders(
    root: Path,
    archs: Iterable[str],
    *,
    code: Path = CODE_ROOT,
    specs: Mapping[str, ArchSpec] | None = None,
    lang: str = "en",
    say: Callable[[str], None] | None = None,
) -> list[Path]:
    """:func:`ensure_configs` for any folder ``root`` (the runtime's ``configs_root``), from ``code``'s data."""
    wanted = _specs_for(code, archs, specs)
    todo = [s for s in wanted if not _complete(code, root / s.id, s)]
    if todo:
        tokenizer = clip_tokenizer_files(code / SHIPPED / BPE_FILE)
        for spec in todo:
            if say is not None:
                say(pick(lang, f"正在准备 {spec.id} 架构的配置文件（随软件附带，无需联网）……",
                         f"Preparing the {spec.id} config files (shipped with Yijian, no network needed)…"))  # fmt: skip
            _write_folder(code, root / spec.id, spec, tokenizer)
    return [root / s.id for s in wanted]
