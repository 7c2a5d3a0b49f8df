"""The hashes AUTOMATIC1111's web UI shows for models, and a cache so a scan hashes each file once.

* :func:`sha256_file` - the full sha256, read in 1 MiB blocks.  A1111 stores
  it in its own ``cache.json`` and shows its first 10 hex digits as the
  checkpoint's short hash (Civitai calls it AutoV2), which is what
  ``Model hash:`` in a picture's infotext holds: :func:`short_hash`.
* :func:`legacy_model_hash` - the hash A1111 used before (and which old
  pictures carry): the sha256 of the 64 KiB at offset 1 MiB, first 8 hex
  digits.
* :class:`HashCache` - ``cache/hashes.json``, keyed by absolute path, valid
  while size and ``mtime_ns`` match.  Writers merge with what is on disk
  and replace the file atomically, so two scans at once never leave it
  half-written (at worst one entry is hashed again next time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bootstrap.atomic import write_atomic
from bootstrap.layout import Bundle

BLOCK_SIZE = 1 << 20
SHORT_HASH_LEN = 10  # A1111's checkpoint shorthash ("AutoV2")
LEGACY_OFFSET = 0x100000
LEGACY_LENGTH = 0x10000
CACHE_VERSION = 1


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """The sha256 of a file, streamed; ``progress`` gets the byte count of each block read."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK_SIZE):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def short_hash(sha256: str) -> str:
    """A1111's short hash of a checkpoint (``Model hash`` in infotext): the first 10 hex digits."""
    return sha256[:SHORT_HASH_LEN]


def legacy_model_hash(path: Path) -> str:
    """A1111's old model hash: sha256 of the 0x10000 bytes at offset 0x100000, first 8 hex digits.

    A file shorter than that offset hashes whatever is there (nothing), as A1111 did.
    """
    with open(path, "rb") as fh:
        fh.seek(LEGACY_OFFSET)
        return hashlib.sha256(fh.read(LEGACY_LENGTH)).hexdigest()[:8]


def _key(path: Path) -> str:
    return os.path.abspath(path)


class HashCache:
    """``cache/hashes.json``: sha256 by absolute path, trusted while size and mtime_ns are unchanged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = self._load()
        self._written: dict[str, dict[str, Any]] = {}  # what this process added, re-applied on every save

    @classmethod
    def for_bundle(cls, bundle: Bundle) -> HashCache:
        return cls(bundle.cache_dir / "hashes.json")

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # absent or damaged: start again, it is only a cache
        files = data.get("files") if isinstance(data, dict) and data.get("version") == CACHE_VERSION else None
        if not isinstance(files, dict):
            return {}
        return {k: v for k, v in files.items() if isinstance(v, dict)}

    def get(self, path: Path, stat: os.stat_result | None = None) -> str | None:
        """The cached sha256 of ``path`` if the file has not changed since, else None."""
        st = stat if stat is not None else os.stat(path)
        entry = self._entries.get(_key(path))
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            value = entry.get("sha256")
            return value if isinstance(value, str) else None
        return None

    def put(self, path: Path, sha256: str, stat: os.stat_result | None = None) -> None:
        """Remember ``sha256`` for the file as it is now, and save."""
        st = stat if stat is not None else os.stat(path)
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
        self._written[_key(path)] = self._entries[_key(path)] = entry
        self._save()

    def sha256(self, path: Path, progress: Callable[[int], None] | None = None) -> str:
        """The sha256 of ``path``: from the cache when still valid, otherwise computed and cached."""
        before = os.stat(path)
        cached = self.get(path, before)
        if cached is not None:
            return cached
        value = sha256_file(path, progress)
        after = os.stat(path)
        if (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns):
            self.put(path, value, after)  # not if the file changed while we read it
        return value

    def _save(self) -> None:
        """Merge with the file on disk and replace it atomically; a failed write only costs a re-hash later."""
        merged = {**self._load(), **self._written}  # keep what another process wrote meanwhile
        self._entries = merged
        with contextlib.suppress(OSError):  # on Windows a replace fails while another process reads the file
            write_atomic(self.path, json.dumps({"version": CACHE_VERSION, "files": merged}, indent=1, sort_keys=True))
