"""A1111's hashes, checked against hashlib directly, and the hash cache: valid while unchanged, never half-written."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher.models import hashes
from launcher.models.hashes import HashCache, legacy_model_hash, sha256_file, short_hash

MiB = 1 << 20


def random_file(path: Path, size: int, seed: int = 0) -> bytes:
    data = hashlib.shake_256(seed.to_bytes(4, "little")).digest(size)
    path.write_bytes(data)
    return data


def test_sha256_is_the_plain_sha256_of_the_whole_file(tmp_path: Path) -> None:
    data = random_file(tmp_path / "m.safetensors", 2 * MiB + 12345)
    seen: list[int] = []
    assert sha256_file(tmp_path / "m.safetensors", seen.append) == hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data) and max(seen) == MiB  # streamed in 1 MiB blocks
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_short_hash_is_a1111s_autov2() -> None:
    # A1111 lists SD 1.5 (v1-5-pruned-emaonly.safetensors, sha256 6ce0161689b3…) as "[6ce0161689]".
    full = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"
    assert short_hash(full) == "6ce0161689"


def test_legacy_hash_reads_64_kib_at_1_mib(tmp_path: Path) -> None:
    data = random_file(tmp_path / "m.ckpt", 3 * MiB, seed=1)
    expected = hashlib.sha256(data[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8]
    assert legacy_model_hash(tmp_path / "m.ckpt") == expected
    assert expected != hashlib.sha256(data).hexdigest()[:8]


def test_legacy_hash_of_a_small_file_hashes_nothing_like_a1111(tmp_path: Path) -> None:
    random_file(tmp_path / "tiny.pt", 4096)
    assert legacy_model_hash(tmp_path / "tiny.pt") == hashlib.sha256(b"").hexdigest()[:8]


# --- the cache -----------------------------------------------------------------------------------------------------


def no_hashing(path: Path, progress: object = None) -> str:
    raise AssertionError(f"hashed {path} again")


def test_a_second_cache_reads_instead_of_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.safetensors"
    data = random_file(model, MiB)
    cache_file = tmp_path / "cache" / "hashes.json"
    assert HashCache(cache_file).sha256(model) == hashlib.sha256(data).hexdigest()
    saved = json.loads(cache_file.read_text(encoding="utf-8"))
    st = model.stat()
    assert saved == {
        "version": 1,
        "files": {
            os.path.abspath(model): {
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        },
    }
    monkeypatch.setattr(hashes, "sha256_file", no_hashing)
    assert HashCache(cache_file).sha256(model) == hashlib.sha256(data).hexdigest()


def test_relative_and_absolute_paths_share_an_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    random_file(tmp_path / "m.pt", 1000)
    cache = HashCache(tmp_path / "hashes.json")
    cache.sha256(tmp_path / "m.pt")
    monkeypatch.chdir(tmp_path)
    assert cache.get(Path("m.pt")) is not None


@pytest.mark.parametrize("change", ["content", "mtime"])
def test_a_changed_file_is_hashed_again(tmp_path: Path, change: str) -> None:
    model = tmp_path / "m.safetensors"
    random_file(model, 5000)
    cache = HashCache(tmp_path / "hashes.json")
    first = cache.sha256(model)
    st = model.stat()
    if change == "content":
        new = random_file(model, 5001, seed=7)
    else:
        new = model.read_bytes()
        os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache.get(model) is None
    second = HashCache(tmp_path / "hashes.json").sha256(model)
    assert second == hashlib.sha256(new).hexdigest()
    assert (second != first) == (change == "content")


@pytest.mark.parametrize("content", ["{broken", '{"version": 99, "files": {}}', "[]", '{"version": 1, "files": []}'])
def test_a_damaged_cache_is_ignored_and_replaced(tmp_path: Path, content: str) -> None:
    cache_file = tmp_path / "hashes.json"
    cache_file.write_text(content, encoding="utf-8")
    random_file(tmp_path / "m.pt", 100)
    cache = HashCache(cache_file)
    assert cache.get(tmp_path / "m.pt") is None
    cache.sha256(tmp_path / "m.pt")
    assert json.loads(cache_file.read_text(encoding="utf-8"))["version"] == 1


def test_two_caches_writing_the_same_file_keep_both_entries(tmp_path: Path) -> None:
    for name in ("a", "b"):
        random_file(tmp_path / f"{name}.pt", 100, seed=ord(name))
    one, two = HashCache(tmp_path / "hashes.json"), HashCache(tmp_path / "hashes.json")
    one.sha256(tmp_path / "a.pt")
    two.sha256(tmp_path / "b.pt")  # two loaded before one wrote: it must merge, not overwrite
    files = json.loads((tmp_path / "hashes.json").read_text(encoding="utf-8"))["files"]
    assert set(files) == {os.path.abspath(tmp_path / "a.pt"), os.path.abspath(tmp_path / "b.pt")}


def _writer(cache_file: str, folder: str, worker: int, count: int) -> None:
    cache = HashCache(Path(cache_file))
    for i in range(count):
        path = Path(folder) / f"w{worker}-{i}.pt"
        path.write_bytes(f"{worker}-{i}".encode())
        cache.sha256(path)


def test_concurrent_writers_never_leave_a_half_written_cache(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache" / "hashes.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(cache_file), str(tmp_path), w, 25)) for w in range(3)]
    for p in procs:
        p.start()
    reads = 0
    while any(p.is_alive() for p in procs) or reads == 0:
        if cache_file.exists():
            data = json.loads(cache_file.read_text(encoding="utf-8"))  # must always parse
            assert data["version"] == 1 and isinstance(data["files"], dict)
            reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    files = json.loads(cache_file.read_text(encoding="utf-8"))["files"]
    for key, entry in files.items():
        assert entry["sha256"] == hashlib.sha256(Path(key).read_bytes()).hexdigest()
    assert not [p for p in cache_file.parent.iterdir() if p.name != "hashes.json"]  # no temp files left behind


def test_an_unwritable_cache_only_costs_a_rehash(tmp_path: Path) -> None:
    random_file(tmp_path / "m.pt", 100)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    cache = HashCache(blocker / "hashes.json")  # its folder cannot be created
    assert cache.sha256(tmp_path / "m.pt") == hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest()
    assert cache.get(tmp_path / "m.pt") is not None  # still remembered in memory


def test_the_bundle_cache_lives_in_cache_dir(sealed: object) -> None:
    bundle = Bundle.locate()
    assert HashCache.for_bundle(bundle).path == bundle.cache_dir / "hashes.json"
