"""Writing a release archive: what is shipped, deterministic tar.gz and zip entries, and reading the manifest back.

Every entry has fixed times, owners and modes and the entries are sorted, so
the same bundle gives the same archive (:mod:`launcher.release` builds the
bundle folder and its manifest, then calls these).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import Any, ClassVar

from bootstrap.errors import ExitCode, YijianError

FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z: every entry of every archive
MANIFEST = "yijian-manifest.json"
EXCLUDED_TOP = {"cache", "logs", "outputs", "config.toml"}  # the builder's scratch, never shipped
SHIPPED_CACHE = ("configs",)  # ...except the architecture config folders a --with-pack archive carries


class ReleaseFailed(YijianError):
    code = "RELEASE_FAILED"
    exit_code: ClassVar[ExitCode] = ExitCode.ENVIRONMENT
    zh = "无法生成便携包：{reason_zh}"
    en = "Could not build the portable archive: {reason_en}"
    hint_zh = "{fix_zh}"
    hint_en = "{fix_en}"


def shipped_entries(root: Path) -> list[tuple[str, Path]]:
    """(archive-relative POSIX path, file) of everything to ship, sorted; directories included."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        if rel_dir == Path("cache"):
            dirnames[:], filenames = sorted(d for d in dirnames if d in SHIPPED_CACHE), []
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d != "__pycache__" and not (rel_dir == Path(".") and d in EXCLUDED_TOP and d != "cache")
        )
        for name in [*dirnames, *filenames]:
            if name.endswith(".pyc") or (rel_dir == Path(".") and name in EXCLUDED_TOP) or name.endswith(".lock"):
                continue
            out.append(((rel_dir / name).as_posix(), here / name))
    return sorted(out)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _mode(path: Path) -> int:
    if path.is_dir():
        return 0o755
    return 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644


def write_tar(entries: list[tuple[str, Path]], name: str, dest: Path) -> None:
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
            top = tarfile.TarInfo(name)
            top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, FIXED_MTIME
            tf.addfile(top)
            for rel, path in entries:
                info = tarfile.TarInfo(f"{name}/{rel}")
                info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
                if path.is_symlink():
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                    tf.addfile(info)
                elif path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tf.addfile(info)
                else:
                    info.size, info.mode = path.stat().st_size, _mode(path)
                    with open(path, "rb") as fh:
                        tf.addfile(info, fh)


def write_zip(entries: list[tuple[str, Path]], name: str, dest: Path) -> None:
    stamp = (2024, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel, path in entries:
            if path.is_symlink():
                raise ReleaseFailed(reason_zh=f"Windows 包里不能有符号链接：{rel}", reason_en=f"a symlink in a Windows archive: {rel}",
                                    fix_zh="这是一个缺陷，请报告。", fix_en="This is a bug; please report it.")  # fmt: skip
            if path.is_dir():
                info = zipfile.ZipInfo(f"{name}/{rel}/", stamp)
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
                continue
            info = zipfile.ZipInfo(f"{name}/{rel}", stamp)
            info.external_attr = _mode(path) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest inside an archive (for checks and tests)."""
    data: dict[str, Any]
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            name = next(n for n in zf.namelist() if n.endswith("/" + MANIFEST))
            data = json.loads(zf.read(name))
            return data
    with tarfile.open(archive) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith("/" + MANIFEST))
        fh = tf.extractfile(member)
        assert fh is not None
        data = json.loads(io.TextIOWrapper(fh, encoding="utf-8").read())
        return data
