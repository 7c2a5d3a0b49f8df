"""The ``python/`` of a release archive: the pinned build through the mirrors, or a relocatable local one.

:func:`fetch_pinned` downloads the target's build from
``bootstrap/python-builds.toml`` through the ``python`` channel (resumable,
several connections, size and sha256 verified before anything is unpacked)
and unpacks it.  When no mirror has it (this machine cannot reach GitHub or
npmmirror, say) and the target is this machine's own, :func:`copy_local`
packs a local CPython of the packs' version instead: the standard library,
the interpreter and its shared library, with the ELF run paths rewritten
relative to ``$ORIGIN`` so that nothing points back at where it came from.
:func:`check_relocated` then runs the copy (from a folder with a space in its
path) and proves it uses only its own files.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootstrap import proc
from bootstrap.layout import Bundle
from bootstrap.portable import edit_pth, pth_file
from bootstrap.python_builds import PythonBuild

# Not needed to run Yijian: the test suite, IDLE, Tk, the static library and build files.
PRUNE_STDLIB = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3/tests", "site-packages")
PRUNE_PREFIXES = ("config-",)


@dataclass(frozen=True)
class PackedPython:
    """What went into ``python/``, said to the user and recorded in the manifest."""

    source: str  # "pinned" (the build from the mirrors) | "local" (this machine's, made relocatable)
    version: str
    origin: str  # the file or the folder it came from
    note_zh: str
    note_en: str

    def note(self, lang: str) -> str:
        return self.note_zh if lang == "zh" else self.note_en

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "version": self.version, "origin": self.origin, "note": self.note_en}


def mirror_sources(bundle: Bundle, build: PythonBuild) -> list[tuple[str, str, str]]:
    """(id, name, url) for every python-channel mirror of the build's kind, in the order ``auto`` picks."""
    from launcher import config
    from launcher.mirrors import ranking
    from launcher.mirrors.catalog import load_catalog
    from launcher.mirrors.sources import candidates

    cfg = config.load(bundle)
    channel = load_catalog(bundle.mirrors_file).channel("python")
    out = []
    for src in candidates(channel, cfg.get_str("mirrors.python"), ranking.load(bundle), version=build.version):
        fits = src.kind == build.kind or (build.kind == "embed" and src.id == "custom" and src.url.endswith(".zip"))
        if fits:
            out.append((src.id, src.name_en, build.url(src.url)))
    return out


def fetch_pinned(bundle: Bundle, build: PythonBuild, *, lang: str, say: Callable[[str], None]) -> Path:
    """The verified build file in ``cache/python/`` (downloaded through the mirrors unless already there)."""
    from launcher.downloads import DownloadSource, download

    sources = [DownloadSource(url, label=name, channel="python", mirror_id=mid)
               for mid, name, url in mirror_sources(bundle, build)]  # fmt: skip
    if not sources:
        raise FileNotFoundError(f"mirrors.toml has no python mirror of kind {build.kind!r}")
    dest = bundle.cache_dir / "python" / build.file
    result = download(sources, dest, sha256=build.sha256, size=build.size or None, connections=4, say=say,
                      lang=lang, bundle=bundle)  # fmt: skip
    return result.path


def unpack_pinned(archive: Path, build: PythonBuild, dest: Path) -> None:
    """Unpack a verified build into ``dest`` (the archive's ``python/``)."""
    if build.kind == "embed":
        dest.mkdir(parents=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
        pth = pth_file(dest)
        if pth is None or not (dest / "python.exe").exists():
            raise ValueError(f"{archive.name} is not a Windows embeddable Python")
        edit_pth(pth, ["Lib\\site-packages", ".."])
        (dest / "Lib" / "site-packages").mkdir(parents=True, exist_ok=True)
        return
    tmp = dest.with_name(dest.name + ".unpack")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as tf:
        tf.extractall(tmp, filter="data")
    (tmp / "python").rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ a local interpreter, made relocatable


def local_prefix(python: str | None, wanted: str) -> Path | None:
    """The installation prefix of ``python`` (default: the one running this), if it is CPython ``wanted`` ("3.11")."""
    exe = str(python or getattr(sys, "_base_executable", None) or sys.executable)
    try:
        out = proc.run([exe, "-I", "-c", "import sys; print(sys.base_prefix); print('%d.%d' % sys.version_info[:2])"],
                       timeout=30, check=True).stdout.split("\n")  # fmt: skip
    except (OSError, proc.SubprocessError):
        return None
    prefix, version = Path(out[0]), out[1]
    if version != wanted or not (prefix / "lib" / f"python{version}" / "os.py").exists():
        return None
    return prefix


def copy_local(prefix: Path, version: str, dest: Path) -> None:
    """The interpreter, its shared library and the pruned standard library of ``prefix``, into ``dest``."""
    stdlib = f"python{version}"
    (dest / "bin").mkdir(parents=True)
    exe = prefix / "bin" / stdlib
    if not exe.exists():
        raise FileNotFoundError(f"{exe} does not exist")
    shutil.copy2(exe, dest / "bin" / stdlib)
    for alias in ("python3", "python"):
        (dest / "bin" / alias).symlink_to(stdlib)
    (dest / "lib").mkdir()
    for lib in sorted((prefix / "lib").glob("libpython*.so*")):
        if lib.is_symlink():
            (dest / "lib" / lib.name).symlink_to(os.readlink(lib))
        else:
            shutil.copy2(lib, dest / "lib" / lib.name)
    prune = {(prefix / "lib" / stdlib / p) for p in PRUNE_STDLIB}

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or Path(folder, n) in prune}
        if Path(folder) == prefix / "lib" / stdlib:
            skip |= {n for n in names if n.startswith(PRUNE_PREFIXES)}
        return skip

    shutil.copytree(prefix / "lib" / stdlib, dest / "lib" / stdlib, ignore=ignore, symlinks=True)
    (dest / "lib" / stdlib / "site-packages").mkdir()
    for path in sorted(dest.rglob("*")):
        if path.is_file() and not path.is_symlink():
            patch_run_path(path, prefix, dest)


def patch_run_path(path: Path, old_prefix: Path, new_prefix: Path) -> bool:
    """Rewrite an ELF file's RUNPATH/RPATH entries under ``old_prefix`` relative to ``$ORIGIN``, in place.

    The new string must fit in the old one's bytes (it is padded with NULs),
    as ``patchelf`` does when it can; True when something changed.  Only
    64-bit little-endian ELF files (x86-64, arm64 Linux) are touched.
    """
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x7fELF\x02\x01":
            return False
    data = bytearray(path.read_bytes())
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return False
    strtab, paths = None, []
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        if tag == 5:  # DT_STRTAB
            strtab = value
        elif tag in (15, 29):  # DT_RPATH, DT_RUNPATH
            paths.append(value)
    if strtab is None or not paths:
        return False
    base = next((o + strtab - v for v, o, size in loads if v <= strtab < v + size), None)
    if base is None:
        return False
    old_root = str(old_prefix)
    changed = False
    for rel in paths:
        start = base + rel
        end = data.index(0, start)
        old = data[start:end].decode("utf-8", "replace")
        entries = []
        for entry in old.split(":"):
            if entry == old_root or entry.startswith(old_root + "/"):
                target = new_prefix / os.path.relpath(entry, old_root)
                hop = os.path.relpath(target, path.parent)
                entry = "$ORIGIN" if hop == "." else f"$ORIGIN/{hop}"
            entries.append(entry)
        new = ":".join(entries).encode()
        if new == data[start:end]:
            continue
        if len(new) > end - start:
            raise ValueError(f"{path}: the new run path {new.decode()!r} does not fit in {old!r}")
        data[start:end] = new + b"\0" * (end - start - len(new))
        changed = True
    if changed:
        mode = path.stat().st_mode
        path.write_bytes(bytes(data))
        os.chmod(path, mode)
    return changed


PROBE = r"""
import json, os, sys
import bz2, ctypes, ensurepip, hashlib, lzma, sqlite3, ssl, venv, zlib
libs = []
if os.path.exists("/proc/self/maps"):
    with open("/proc/self/maps") as fh:
        libs = sorted({ln.split(None, 5)[5].strip() for ln in fh if "libpython" in ln and "/" in ln})
print(json.dumps({"prefix": sys.prefix, "base": sys.base_prefix, "path": sys.path, "libs": libs,
                  "version": "%d.%d.%d" % sys.version_info[:3]}))
"""


def check_relocated(dest: Path) -> str:
    """Run the copy in ``dest`` with a bare environment; its version, or ValueError naming what escaped."""
    exe = dest / "bin" / "python3"
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    out = proc.run([exe, "-I", "-B", "-c", PROBE], env=env, cwd="/", timeout=60)
    if out.returncode != 0:
        raise ValueError(f"the copied interpreter does not run: {out.stderr.strip()[-500:]}")
    facts = json.loads(out.stdout)
    root = dest.resolve()

    def inside(p: str) -> bool:
        return Path(p).resolve().is_relative_to(root)

    outside = [p for p in [facts["prefix"], facts["base"], *facts["libs"]] if not inside(p)]
    outside += [p for p in facts["path"] if p and Path(p).exists() and not inside(p)]
    if outside:
        raise ValueError(f"the copied interpreter still uses files outside {dest}: {', '.join(outside)}")
    return str(facts["version"])
