"""`yijian models ...` as users run it, against the local file server and Hugging Face stand-in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.bundle_copy import kill_9_mid_download, run_cli
from tests.support.fake_models import random_safetensors
from tests.support.fileserver import FileServer
from tests.support.hf_endpoint import HfEndpoint
from tests.support.tiny_sd import TinySD

MiB = 1024 * 1024


def test_download_by_url_verifies_and_lands_where_asked(
    bundle: Path, file_server: FileServer, model_bytes: bytes, tmp_path: Path
) -> None:
    file_server.add("/m/tiny.safetensors", model_bytes)
    sha = hashlib.sha256(model_bytes).hexdigest()
    r = run_cli(bundle, "models", "download", file_server.url_for("/m/tiny.safetensors"), "--sha256", sha,
                "--connections", "4", "--to", str(tmp_path / "out"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sha256"] == sha and out["size"] == len(model_bytes) and Path(out["path"]).read_bytes() == model_bytes
    assert out["path"] == str(tmp_path / "out" / "tiny.safetensors")
    again = json.loads(run_cli(bundle, "models", "download", file_server.url_for("/m/tiny.safetensors"), "--sha256", sha,
                               "--to", str(tmp_path / "out"), "--json").stdout)  # fmt: skip
    assert again["already_present"] is True


def test_default_folder_follows_the_type_and_the_fragment_hash_is_used(
    bundle: Path, file_server: FileServer, model_bytes: bytes
) -> None:
    sha = hashlib.sha256(model_bytes).hexdigest()
    file_server.add("/x/style.safetensors", model_bytes)
    r = run_cli(
        bundle, "models", "download", file_server.url_for("/x/style.safetensors") + f"#sha256={sha}", "--type", "lora"
    )
    assert r.returncode == 0, r.stderr
    assert (bundle / "models" / "Lora" / "style.safetensors").read_bytes() == model_bytes
    assert "verified" in r.stdout


def test_wrong_content_and_wrong_hash_never_land(bundle: Path, file_server: FileServer, model_bytes: bytes) -> None:
    file_server.add("/h/model.safetensors", model_bytes).faults.html_error = True
    r = run_cli(bundle, "models", "download", file_server.url_for("/h/model.safetensors"))
    assert r.returncode == 5 and "DOWNLOAD_WRONG_CONTENT" in r.stderr and "HTML page" in r.stderr
    file_server.add("/g/model.safetensors", model_bytes)
    r = run_cli(bundle, "models", "download", file_server.url_for("/g/model.safetensors"), "--sha256", "a" * 64)
    assert r.returncode == 5 and "DOWNLOAD_CHECKSUM_MISMATCH" in r.stderr
    assert list((bundle / "models" / "Stable-diffusion").iterdir()) == [
        bundle / "models" / "Stable-diffusion" / ".gitkeep"
    ]


def test_bad_arguments_are_named(bundle: Path) -> None:
    r = run_cli(bundle, "models", "download", "sdxl-bsae")
    assert r.returncode == 2 and "MODEL_UNKNOWN" in r.stderr and "Did you mean 'sdxl-base'" in r.stderr
    r = run_cli(bundle, "models", "download", "https://example.invalid/a.safetensors", "--sha256", "xyz")
    assert r.returncode == 2 and "64 hex digits" in r.stderr
    assert run_cli(bundle, "config", "set", "network.offline", "true").returncode == 0
    r = run_cli(bundle, "models", "download", "sd15", "--json")
    assert r.returncode == 4 and json.loads(r.stdout)["error"]["code"] == "OFFLINE_MODE"


def test_hugging_face_repo_file_through_the_chosen_endpoint(
    bundle: Path, hf_endpoint: HfEndpoint, model_bytes: bytes
) -> None:
    hf_endpoint.add_repo(
        "someone/tiny-model", {"tiny.safetensors": model_bytes, "README.md": b"# hi"}, lfs=("tiny.safetensors",)
    )
    assert run_cli(bundle, "config", "set", "mirrors.huggingface", hf_endpoint.url).returncode == 0
    r = run_cli(bundle, "models", "download", "someone/tiny-model/tiny.safetensors", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sha256"] == hashlib.sha256(model_bytes).hexdigest()  # from the LFS metadata, verified
    assert Path(out["path"]) == bundle / "models" / "Stable-diffusion" / "tiny.safetensors"
    assert "/resolve/" in out["url"] or "/cdn/" in out["url"]


def test_a_catalog_entry_downloads_by_name_into_its_folder(
    bundle: Path, hf_endpoint: HfEndpoint, model_bytes: bytes
) -> None:
    hf_endpoint.add_repo(
        "OedoSoldier/detail-tweaker-lora", {"add_detail.safetensors": model_bytes}, lfs=("add_detail.safetensors",)
    )
    assert run_cli(bundle, "config", "set", "mirrors.huggingface", hf_endpoint.url).returncode == 0
    r = run_cli(bundle, "models", "download", "detail-tweaker", "--json")
    assert r.returncode == 0, r.stderr
    assert (bundle / "models" / "Lora" / "add_detail.safetensors").read_bytes() == model_bytes
    catalog = json.loads(run_cli(bundle, "models", "catalog", "--json").stdout)["models"]
    assert next(m for m in catalog if m["id"] == "add-detail")["installed"] is True


def test_kill_9_and_the_same_command_resumes(bundle: Path, file_server: FileServer, tmp_path: Path) -> None:
    data = random_safetensors(12 * MiB)
    sha = hashlib.sha256(data).hexdigest()
    file_server.add("/big.safetensors", data).faults.throttle = MiB  # 8 connections: about 1.5 s in all
    args = ["models", "download", file_server.url_for("/big.safetensors"), "--sha256", sha, "--to", str(tmp_path / "o")]
    kill_9_mid_download(bundle, args, tmp_path / "o" / "big.safetensors.part.log", tmp_path / "first-run.log")
    file_server.faults("/big.safetensors").throttle = None
    r = run_cli(bundle, *args, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["reused"] > 0 and (tmp_path / "o" / "big.safetensors").read_bytes() == data


def test_scan_reports_format_architecture_and_hash(bundle: Path, tiny_sd: TinySD) -> None:
    target = bundle / "models" / "Stable-diffusion" / "tiny.safetensors"
    target.write_bytes(tiny_sd.checkpoint.read_bytes())
    (bundle / "models" / "Lora" / "tiny-lora.safetensors").write_bytes(tiny_sd.lora.read_bytes())
    (bundle / "models" / "Stable-diffusion" / "old.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    r = run_cli(bundle, "models", "scan", "--json")
    assert r.returncode == 0, r.stderr
    by_name = {Path(m["path"]).name: m for m in json.loads(r.stdout)["models"]}
    tiny = by_name["tiny.safetensors"]
    assert tiny["format"] == "safetensors" and tiny["type"] == "checkpoint"
    assert tiny["architecture"] == "unknown (cross-attention 32)"
    assert (
        tiny["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest() and tiny["short_hash"] == tiny["sha256"][:10]
    )
    assert by_name["tiny-lora.safetensors"]["type"] == "lora"
    assert any("pickle" in p for p in by_name["old.ckpt"]["problems"])
    listing = run_cli(bundle, "--lang", "zh", "models", "list")
    assert listing.returncode == 0 and "tiny.safetensors" in listing.stdout and "文件夹" in listing.stdout
