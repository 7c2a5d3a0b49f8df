"""scan() over a real bundle: the tiny model's files, fake SD headers, broken downloads, shared A1111/ComfyUI folders."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from bootstrap.layout import Bundle
from launcher.models import hashes
from launcher.models.catalog import load_model_catalog
from launcher.models.library import ModelFile, describe, model_roots, scan, verify, verify_files
from tests.support.fake_models import ESRGAN, HTML_PAGE, LFS_POINTER, SD15_LORA, SDXL_CKPT, VAE, write_safetensors
from tests.support.tiny_sd import TinySD, write_pickle_checkpoint

REQUIRED_KEYS = {
    "path",
    "folder",
    "type",
    "format",
    "architecture",
    "size",
    "sha256",
    "short_hash",
    "problems",
    "shared",
}


@pytest.fixture
def bundle(sealed: object) -> Bundle:
    b = Bundle.locate()
    b.ensure_dirs()
    for folder in ("Stable-diffusion", "Lora", "VAE", "embeddings", "ESRGAN"):
        (b.models_dir / folder / ".gitkeep").touch()
    return b


@pytest.fixture
def library(bundle: Bundle, tiny_sd: TinySD) -> Bundle:
    """A library with one of everything, plus the engine's working files and other clutter."""
    m = bundle.models_dir
    shutil.copy(tiny_sd.checkpoint, m / "Stable-diffusion" / "tiny.safetensors")
    shutil.copytree(tiny_sd.diffusers_dir, m / "Stable-diffusion" / "tiny-diffusers")
    write_safetensors(m / "Stable-diffusion" / "XL" / "sdxl.safetensors", SDXL_CKPT)
    write_pickle_checkpoint(tiny_sd, m / "Stable-diffusion" / "old.ckpt")
    (m / "Stable-diffusion" / "broken.safetensors").write_bytes(HTML_PAGE)
    shutil.copy(tiny_sd.lora, m / "Lora" / "tiny-lora.safetensors")
    (m / "Lora" / "pointer.safetensors").write_bytes(LFS_POINTER)
    write_safetensors(m / "VAE" / "vae.safetensors", VAE)
    shutil.copy(tiny_sd.embedding, m / "embeddings" / "tiny-emb.safetensors")
    write_safetensors(m / "ESRGAN" / "4x.safetensors", ESRGAN)
    for clutter in (
        "sd15.safetensors.part",
        "sd15.safetensors.part.json",
        "sd15.safetensors.part.log",
        "sd15.safetensors.part.lock",
        ".hidden.safetensors",
        "notes.txt",
        "tiny.yaml",
        "tiny.preview.png",
    ):
        (m / "Stable-diffusion" / clutter).write_bytes(b"x")  # fmt: skip
    (m / "Stable-diffusion" / ".trash").mkdir()
    shutil.copy(tiny_sd.checkpoint, m / "Stable-diffusion" / ".trash" / "gone.safetensors")
    return bundle


def by_name(files: list[ModelFile]) -> dict[str, ModelFile]:
    return {f.name: f for f in files}


def codes(f: ModelFile) -> list[str]:
    return [p.code_with_reason for p in f.problems]


def test_scan_reports_every_model_once_and_nothing_else(library: Bundle) -> None:
    files = scan(library, with_hashes=False)
    assert [f.name for f in files] == [
        "broken.safetensors", "old.ckpt", "tiny-diffusers", "tiny.safetensors", "sdxl.safetensors",
        "pointer.safetensors", "tiny-lora.safetensors", "vae.safetensors", "tiny-emb.safetensors", "4x.safetensors",
    ]  # fmt: skip
    found = by_name(files)
    expect = {
        "tiny.safetensors": ("checkpoint", "checkpoint", "safetensors", "unknown (cross-attention 32)", []),
        "sdxl.safetensors": ("checkpoint", "checkpoint", "safetensors", "sdxl", []),
        "tiny-diffusers": ("checkpoint", "checkpoint", "diffusers", "unknown (cross-attention 32)", []),
        "old.ckpt": ("checkpoint", "checkpoint", "ckpt", None, ["pickle"]),
        "broken.safetensors": ("checkpoint", "checkpoint", "safetensors", None, ["corrupt:html"]),
        "tiny-lora.safetensors": ("lora", "lora", "safetensors", "unknown (cross-attention 32)", []),
        "pointer.safetensors": ("lora", "lora", "safetensors", None, ["corrupt:lfs-pointer"]),
        "vae.safetensors": ("vae", "vae", "safetensors", None, []),
        "tiny-emb.safetensors": ("embedding", "embedding", "safetensors", "unknown (width 32)", []),
        "4x.safetensors": ("upscaler", "upscaler", "safetensors", None, []),
    }
    for name, (folder, kind, fmt, arch, problems) in expect.items():
        f = found[name]
        assert (f.folder, f.type, f.format, f.architecture, codes(f)) == (folder, kind, fmt, arch, problems), name
        assert f.sha256 is None and f.short_hash is None and not f.shared
    assert (
        found["tiny.safetensors"].size == (library.models_dir / "Stable-diffusion" / "tiny.safetensors").stat().st_size
    )
    diffusers_dir = library.models_dir / "Stable-diffusion" / "tiny-diffusers"
    assert found["tiny-diffusers"].size == sum(p.stat().st_size for p in diffusers_dir.rglob("*") if p.is_file())


def test_problems_explain_themselves_in_both_languages(library: Bundle) -> None:
    found = by_name(scan(library, with_hashes=False))
    pickle = found["old.ckpt"].to_dict()
    assert pickle["problems"] == ["pickle file: can run code when loaded; prefer a .safetensors version"]
    assert pickle["problem_codes"] == ["pickle"]
    html = found["broken.safetensors"]
    assert html.problems[0].reason == "html"
    assert html.to_dict("en")["problems"] == ["corrupt: HTML page, not a model"]
    assert "网页" in html.to_dict("zh")["problems"][0]


def test_to_dict_is_the_json_contract(library: Bundle) -> None:
    for f in scan(library, with_hashes=True):
        d = f.to_dict()
        assert REQUIRED_KEYS <= set(d)
        assert json.loads(json.dumps(d)) == d
        assert d["path"] == str(f.path) and isinstance(d["problems"], list)


def test_hashes_are_a1111s_and_come_from_the_cache_the_second_time(
    library: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[Path, int] = {}
    files = scan(library, with_hashes=True, progress=lambda p, n: seen.__setitem__(p, seen.get(p, 0) + n))
    for f in files:
        if f.format == "diffusers":
            assert f.sha256 is None
            continue
        data = f.path.read_bytes()
        assert f.sha256 == hashlib.sha256(data).hexdigest(), f.name
        assert f.short_hash == f.sha256[:10]
        assert f.legacy_hash == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
        assert seen[f.path] == f.size
    assert (library.cache_dir / "hashes.json").is_file()

    def no_hashing(path: Path, progress: object = None) -> str:
        raise AssertionError(f"hashed {path} again")

    monkeypatch.setattr(hashes, "sha256_file", no_hashing)
    again = scan(library, with_hashes=True)
    assert [f.sha256 for f in again] == [f.sha256 for f in files]


def test_a_model_in_the_wrong_folder_is_flagged(bundle: Bundle, tiny_sd: TinySD) -> None:
    write_safetensors(bundle.models_dir / "Stable-diffusion" / "style.safetensors", SD15_LORA)
    (f,) = scan(bundle, with_hashes=False)
    assert (f.folder, f.type, f.architecture, codes(f)) == ("checkpoint", "lora", "sd15", ["wrong-folder"])
    assert "move it to Lora" in f.problems[0].en


def test_a_truncated_download_and_an_empty_file(bundle: Bundle, tiny_sd: TinySD) -> None:
    data = tiny_sd.checkpoint.read_bytes()
    (bundle.models_dir / "Stable-diffusion" / "cut.safetensors").write_bytes(data[: len(data) // 3])
    (bundle.models_dir / "Stable-diffusion" / "empty.ckpt").write_bytes(b"")
    (bundle.models_dir / "Stable-diffusion" / "page.ckpt").write_bytes(HTML_PAGE)
    found = by_name(scan(bundle, with_hashes=False))
    assert codes(found["cut.safetensors"]) == ["corrupt:truncated"]
    assert codes(found["empty.ckpt"]) == ["corrupt:empty"]
    assert codes(found["page.ckpt"]) == ["corrupt:html"]  # a pickle name does not hide an HTML page


# --- shared folders ------------------------------------------------------------------------------------------------


def a1111(root: Path, tiny_sd: TinySD) -> Path:
    """An A1111 / 秋叶 web UI folder: models/<A1111 names>, embeddings/ beside models/."""
    for sub in ("models/Stable-diffusion", "models/hypernetworks", "embeddings"):
        (root / sub).mkdir(parents=True)
    shutil.copy(tiny_sd.checkpoint, root / "models" / "Stable-diffusion" / "a.safetensors")
    write_safetensors(root / "models" / "Lora" / "sub" / "b.safetensors", SD15_LORA)
    write_safetensors(root / "models" / "VAE" / "c.safetensors", VAE)
    write_safetensors(root / "models" / "RealESRGAN" / "d.safetensors", ESRGAN)
    shutil.copy(tiny_sd.embedding, root / "embeddings" / "e.safetensors")
    return root


@pytest.mark.parametrize("point_at", ["models", "webui"])
def test_an_a1111_folder_is_shared_in_place(bundle: Bundle, tiny_sd: TinySD, tmp_path: Path, point_at: str) -> None:
    webui = a1111(tmp_path / "sd-webui-aki", tiny_sd)
    extra = webui / "models" if point_at == "models" else webui
    files = scan(bundle, [str(extra)], with_hashes=False)
    assert {(f.name, f.folder, f.type, f.shared) for f in files} == {
        ("a.safetensors", "checkpoint", "checkpoint", True),
        ("b.safetensors", "lora", "lora", True),
        ("c.safetensors", "vae", "vae", True),
        ("d.safetensors", "upscaler", "upscaler", True),
        ("e.safetensors", "embedding", "embedding", True),
    }


def test_a_comfyui_models_folder_is_shared_too(bundle: Bundle, tmp_path: Path) -> None:
    comfy = tmp_path / "ComfyUI" / "models"
    write_safetensors(comfy / "checkpoints" / "xl.safetensors", SDXL_CKPT)
    write_safetensors(comfy / "loras" / "l.safetensors", SD15_LORA)
    write_safetensors(comfy / "upscale_models" / "u.safetensors", ESRGAN)
    write_safetensors(comfy / "clip" / "ignored.safetensors", {"x": (1,)})
    files = scan(bundle, [comfy], with_hashes=False)
    assert {(f.name, f.folder, f.architecture) for f in files} == {
        ("xl.safetensors", "checkpoint", "sdxl"), ("l.safetensors", "lora", "sd15"), ("u.safetensors", "upscaler", None),
    }  # fmt: skip


def test_relative_missing_and_duplicate_extra_dirs(bundle: Bundle, tiny_sd: TinySD) -> None:
    shutil.copy(tiny_sd.checkpoint, bundle.models_dir / "Stable-diffusion" / "mine.safetensors")
    a1111(bundle.root / "shared" / "webui", tiny_sd)
    files = scan(
        bundle, ["shared/webui/models", "/no/such/folder", bundle.models_dir, "~/nothing-here"], with_hashes=False
    )
    names = [f.name for f in files]
    assert names.count("mine.safetensors") == 1  # the bundle's own folder given again is not scanned twice
    assert not by_name(files)["mine.safetensors"].shared
    assert by_name(files)["a.safetensors"].shared
    roots = model_roots(bundle, ["shared/webui/models"])
    assert roots[0].path == bundle.models_dir / "Stable-diffusion" and not roots[0].shared
    assert any(r.path == bundle.root / "shared" / "webui" / "embeddings" and r.type == "embedding" for r in roots)


def test_a_symlink_loop_does_not_hang_the_scan(bundle: Bundle, tiny_sd: TinySD) -> None:
    sd = bundle.models_dir / "Stable-diffusion"
    shutil.copy(tiny_sd.checkpoint, sd / "a.safetensors")
    (sd / "loop").symlink_to(sd, target_is_directory=True)
    assert [f.name for f in scan(bundle, with_hashes=False)] == ["a.safetensors"]


def test_a_missing_bundle_models_folder_is_fine(sealed: object) -> None:
    assert scan(Bundle.locate(), with_hashes=True) == []


# --- one file, verify ----------------------------------------------------------------------------------------------


def test_describe_a_file_outside_the_library(tmp_path: Path, tiny_sd: TinySD) -> None:
    (tmp_path / "Lora").mkdir()
    lora = describe(shutil.copy(tiny_sd.lora, tmp_path / "Lora" / "x.safetensors"))
    assert (lora.folder, lora.type) == ("lora", "lora")
    loose = describe(tiny_sd.embedding)  # its folder says nothing: what it is decides
    assert (loose.folder, loose.type, codes(loose)) == ("embedding", "embedding", [])
    with pytest.raises(ValueError, match="not a model file"):
        describe(tmp_path / "notes.txt")


def test_verify_hashes_in_full_and_compares(bundle: Bundle, tiny_sd: TinySD) -> None:
    from launcher.models.hashes import HashCache

    path = tiny_sd.checkpoint
    right = hashlib.sha256(path.read_bytes()).hexdigest()
    cache = HashCache.for_bundle(bundle)
    good = verify(path, right.upper(), cache=cache)
    assert good.ok and good.actual == right
    assert cache.get(path) == right
    bad = verify(path, "0" * 64)
    assert not bad.ok and bad.actual == right


def test_verify_files_checks_against_the_catalog(bundle: Bundle, tiny_sd: TinySD, tmp_path: Path) -> None:
    sd = bundle.models_dir / "Stable-diffusion"
    good = shutil.copy(tiny_sd.checkpoint, sd / "good.safetensors")
    shutil.copy(tiny_sd.checkpoint, sd / "tampered.safetensors")
    write_pickle_checkpoint(tiny_sd, sd / "old.ckpt")
    (sd / "page.safetensors").write_bytes(HTML_PAGE)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    entries = ""
    for name, sha in (("good", digest), ("tampered", "f" * 64)):
        entries += f"""
[[model]]
id = "{name}"
name_zh = "{name}"
name_en = "{name.title()}"
description_zh = "x"
description_en = "x"
type = "checkpoint"
architecture = "sd15"
repo = "org/{name}"
file = "{name}.safetensors"
size = 1000
sha256 = "{sha}"
license = "MIT"
default = {str(name == "good").lower()}
"""
    (tmp_path / "catalog.toml").write_text(entries, encoding="utf-8")
    catalog = load_model_catalog(tmp_path / "catalog.toml")
    results = {Path(r["path"]).name: r for r in verify_files(bundle, catalog=catalog)}
    assert results["good.safetensors"]["ok"] and results["good.safetensors"]["catalog_id"] == "good"
    assert results["good.safetensors"]["sha256"] == digest == results["good.safetensors"]["expected_sha256"]
    assert not results["tampered.safetensors"]["ok"]
    assert results["tampered.safetensors"]["problem_codes"] == ["hash-mismatch"]
    assert results["old.ckpt"]["ok"] and results["old.ckpt"]["problem_codes"] == ["pickle"]
    assert not results["page.safetensors"]["ok"]
    assert json.loads(json.dumps(list(results.values()))) == list(results.values())

    picked = verify_files(bundle, [good, sd / "missing.safetensors"], catalog=catalog, lang="zh")
    assert [r["ok"] for r in picked] == [True, False]
    assert picked[1]["problem_codes"] == ["missing"] and picked[1]["problems"] == ["不是模型文件或文件夹"]


def test_an_unreadable_file_is_reported_not_raised(bundle: Bundle) -> None:
    (bundle.models_dir / "Stable-diffusion" / "dangling.safetensors").symlink_to(bundle.root / "moved-away.safetensors")
    (f,) = scan(bundle, with_hashes=True)
    assert codes(f) == ["unreadable"] and f.sha256 is None and f.size == 0
    assert "No such file" in f.problems[0].en
