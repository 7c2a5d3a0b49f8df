"""`models download LINK` for every link kind, against the Civitai, ModelScope and Hugging Face stand-ins."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.bundle_copy import kill_9_mid_download, run_cli
from tests.support.civitai_endpoint import PNG_1X1, CivitaiEndpoint
from tests.support.fake_models import SD15_CKPT, SD15_LORA, random_safetensors, write_safetensors
from tests.support.fileserver import FileServer
from tests.support.hf_endpoint import HfEndpoint
from tests.support.modelscope_endpoint import ModelScopeEndpoint

MiB = 1024 * 1024
TOKEN = "c1v1ta1-t0ken-8f3e2d1c0b9a"


def use(bundle: Path, channel: str, url: str) -> None:
    r = run_cli(bundle, "--lang", "en", "mirrors", "use", channel, url)
    assert r.returncode == 0, r.stderr
    assert f"mirrors.{channel} = {url}" in r.stdout


def civitai(bundle: Path, site: CivitaiEndpoint, token: str | None = TOKEN) -> None:
    use(bundle, "civitai", site.url)
    if token:
        assert run_cli(bundle, "config", "set", "downloads.civitai_token", token).returncode == 0


def test_a_civitai_lora_page_lands_in_lora_with_its_metadata_and_the_token_stays_home(
    bundle: Path, civitai_endpoint: CivitaiEndpoint, model_bytes: bytes
) -> None:
    civitai_endpoint.token = TOKEN
    civitai_endpoint.add_model(model_id=4384, version_id=128713, kind="LORA", base_model="SD 1.5",
                               files={"glow-style.safetensors": model_bytes}, trained_words=["glowstyle", "neon"],
                               model_name="Glow", version_name="v2")  # fmt: skip
    civitai(bundle, civitai_endpoint)
    # The link names civitai.com; it is resolved through the channel's endpoint (the stand-in).
    r = run_cli(bundle, "--lang", "en", "models", "download",
                "https://civitai.com/models/4384/glow?modelVersionId=128713", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    target = bundle / "models" / "Lora" / "glow-style.safetensors"
    assert Path(out["path"]) == target and target.read_bytes() == model_bytes
    assert out["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    meta = json.loads((bundle / "models" / "Lora" / "glow-style.json").read_text(encoding="utf-8"))
    assert meta["activation text"] == "glowstyle, neon" and meta["sd version"] == "SD1"
    assert meta["base model"] == "SD 1.5" and meta["sha256"] == out["sha256"] and meta["version"] == "v2"
    assert "civitai.com/models/4384?modelVersionId=128713" in meta["source url"]
    info = json.loads((bundle / "models" / "Lora" / "glow-style.civitai.info").read_text(encoding="utf-8"))
    assert info["id"] == 128713 and info["trainedWords"] == ["glowstyle", "neon"]
    assert (bundle / "models" / "Lora" / "glow-style.preview.png").read_bytes() == PNG_1X1
    civitai_endpoint.wait_idle()
    downloads = civitai_endpoint.requests_to("/api/download/")
    signed = civitai_endpoint.requests_to("/signed/")
    assert downloads and all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in downloads)
    assert signed and not any("Authorization" in r.headers for r in signed)  # another host: no token
    assert not any("Authorization" in r.headers for r in civitai_endpoint.requests_to("/images/"))
    assert TOKEN not in r.stdout + r.stderr


def test_without_a_token_civitai_says_where_to_get_one_in_both_languages(
    bundle: Path, civitai_endpoint: CivitaiEndpoint, model_bytes: bytes
) -> None:
    civitai_endpoint.token = TOKEN
    civitai_endpoint.add_model(model_id=5, version_id=55, files={"m.safetensors": model_bytes})
    civitai(bundle, civitai_endpoint, token=None)
    env = {"CIVITAI_TOKEN": "", "CIVITAI_API_TOKEN": ""}
    r = run_cli(bundle, "--lang", "en", "models", "download", "civitai:5@55", env=env)
    assert r.returncode == 5 and "MODEL_TOKEN_NEEDED" in r.stderr, r.stderr
    assert "https://civitai.com/user/account" in r.stderr and "config set downloads.civitai_token" in r.stderr
    assert "No token is set" in r.stderr and "resume" not in r.stderr
    zh = run_cli(bundle, "--lang", "zh", "models", "download", "civitai:5@55", env=env)
    assert "令牌" in zh.stderr and "https://civitai.com/user/account" in zh.stderr
    assert run_cli(bundle, "config", "set", "downloads.civitai_token", "wrong-token-1234").returncode == 0
    r = run_cli(bundle, "--lang", "en", "models", "download", "civitai:5@55", env=env)
    assert "MODEL_TOKEN_NEEDED" in r.stderr and "was refused" in r.stderr and "wrong-token-1234" not in r.stderr
    assert not (bundle / "models" / "Stable-diffusion" / "m.safetensors").exists()


def test_a_missing_version_or_file_is_a_dead_link_never_a_resume(
    bundle: Path, civitai_endpoint: CivitaiEndpoint, file_server: FileServer
) -> None:
    civitai(bundle, civitai_endpoint)
    r = run_cli(bundle, "--lang", "en", "models", "download", "https://civitai.com/api/download/models/999")
    assert r.returncode == 5 and "MODEL_LINK_NOT_FOUND" in r.stderr and "HTTP 404" in r.stderr, r.stderr
    assert "resume" not in r.stderr and "again" not in r.stderr
    file_server.add("/gone.safetensors", b"x" * 100).faults.status = 404
    r = run_cli(bundle, "--lang", "en", "models", "download", file_server.url_for("/gone.safetensors"))
    assert "MODEL_LINK_NOT_FOUND" in r.stderr and "resume" not in r.stderr, r.stderr


def test_unsupported_links_name_what_is_accepted(bundle: Path, file_server: FileServer) -> None:
    r = run_cli(bundle, "--lang", "en", "models", "download", "ftp://example.com/model.safetensors")
    assert r.returncode == 2 and "MODEL_LINK_UNSUPPORTED" in r.stderr and "ftp://" in r.stderr
    for form in ("civitai:ID@VERSION", "ModelScope", "hf-mirror", "http(s) link"):
        assert form in r.stderr
    file_server.add("/blog/how-to-draw", b"unused").faults.html_error = True  # a page, 200 text/html
    r = run_cli(bundle, "--lang", "zh", "models", "download", file_server.url_for("/blog/how-to-draw"))
    assert r.returncode == 2 and "MODEL_LINK_UNSUPPORTED" in r.stderr and "网页" in r.stderr and "魔搭" in r.stderr


def test_kill_9_during_a_civitai_download_resumes_after_the_signed_url_expired(
    bundle: Path, civitai_endpoint: CivitaiEndpoint, tmp_path: Path
) -> None:
    data = random_safetensors(12 * MiB)
    civitai_endpoint.token = TOKEN
    civitai_endpoint.add_model(model_id=7, version_id=77, files={"big.safetensors": data})
    civitai_endpoint.faults(77, "big.safetensors").throttle = MiB  # 8 connections: about 1.5 s in all
    civitai(bundle, civitai_endpoint)
    args = ["models", "download", "https://civitai.com/models/7?modelVersionId=77"]
    journal = bundle / "models" / "Stable-diffusion" / "big.safetensors.part.log"
    kill_9_mid_download(bundle, args, journal, tmp_path / "first-run.log")  # a real child, killed mid-way
    part = journal.with_name("big.safetensors.part")
    assert part.exists() and civitai_endpoint.expire_signed() >= 1
    civitai_endpoint.faults(77, "big.safetensors").throttle = None
    civitai_endpoint.reset_counts()
    r = run_cli(bundle, *args, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["reused"] > 0 and out["reused"] + out["fetched"] == len(data)
    assert (bundle / "models" / "Stable-diffusion" / "big.safetensors").read_bytes() == data
    civitai_endpoint.wait_idle()
    expired = [q for q in civitai_endpoint.requests_to("/signed/") if q.status == 403]
    assert not expired  # the second run asked the download link again and got a fresh signed URL
    assert len(civitai_endpoint.requests_to("/api/download/")) >= 1


def test_variants_and_files_of_a_civitai_version(
    bundle: Path, civitai_endpoint: CivitaiEndpoint, model_bytes: bytes
) -> None:
    full = model_bytes + b"\0" * 16
    civitai_endpoint.add_model(model_id=9, version_id=99, primary="m-fp16.safetensors",
                               files={"m-fp16.safetensors": model_bytes, "m-fp32.safetensors": full},
                               variants={"m-fp32.safetensors": ("fp32", "full")})  # fmt: skip
    civitai(bundle, civitai_endpoint)
    r = run_cli(bundle, "models", "download", "urn:air:sd1:checkpoint:civitai:9@99", "--variant", "fp32", "--json")
    assert r.returncode == 0, r.stderr
    assert Path(json.loads(r.stdout)["path"]).read_bytes() == full
    r = run_cli(bundle, "--lang", "en", "models", "download", "civitai:9@99", "--file", "nope.safetensors")
    assert r.returncode == 2 and "MODEL_FILE_CHOICE" in r.stderr and "m-fp32.safetensors (fp32, full" in r.stderr


def test_a_civitai_lora_for_another_base_model_is_said_before_it_downloads(
    bundle: Path, civitai_endpoint: CivitaiEndpoint, model_bytes: bytes
) -> None:
    write_safetensors(bundle / "models" / "Stable-diffusion" / "mine.safetensors", SD15_CKPT)
    civitai_endpoint.add_model(model_id=3, version_id=33, kind="LORA", base_model="Pony",
                               files={"pony-style.safetensors": model_bytes})  # fmt: skip
    civitai(bundle, civitai_endpoint)
    r = run_cli(bundle, "--lang", "en", "models", "download", "civitai:3@33")
    assert r.returncode == 0, r.stderr
    assert "made for Pony (SDXL)" in r.stderr and "your checkpoints are SD 1.5" in r.stderr
    assert "Measuring" not in r.stderr  # a Civitai id needs no Hugging Face mirror


def test_a_modelscope_repository_and_file_through_the_chosen_endpoint(
    bundle: Path, modelscope_endpoint: ModelScopeEndpoint, model_bytes: bytes
) -> None:
    modelscope_endpoint.add_repo("AI-ModelScope/stable-diffusion-v1-5", {"README.md": b"probe"})
    modelscope_endpoint.add_repo("someone/anime", {"anime.safetensors": model_bytes, "README.md": b"# hi",
                                                   "unet/diffusion_pytorch_model.safetensors": b"x"})  # fmt: skip
    use(bundle, "modelscope", modelscope_endpoint.url)  # checked by a probe of the listing API, then saved
    modelscope_endpoint.token = "ms-t0ken-1234567"
    assert run_cli(bundle, "config", "set", "downloads.modelscope_token", "ms-t0ken-1234567").returncode == 0
    r = run_cli(bundle, "models", "download", "https://www.modelscope.cn/models/someone/anime/summary", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert Path(out["path"]) == bundle / "models" / "Stable-diffusion" / "anime.safetensors"
    assert out["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    meta = json.loads((bundle / "models" / "Stable-diffusion" / "anime.json").read_text(encoding="utf-8"))
    assert meta["source url"].endswith("/models/someone/anime/summary") and meta["sha256"] == out["sha256"]
    r = run_cli(bundle, "models", "download", "--type", "lora", "--json",
                "https://modelscope.cn/models/someone/anime/file/view/master/anime.safetensors")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert Path(json.loads(r.stdout)["path"]) == bundle / "models" / "Lora" / "anime.safetensors"


def test_a_hugging_face_repository_link_picks_its_model_file(
    bundle: Path, hf_endpoint: HfEndpoint, model_bytes: bytes
) -> None:
    hf_endpoint.add_repo("someone/tiny-model", {"tiny.safetensors": model_bytes, "README.md": b"# hi"},
                         lfs=("tiny.safetensors",))  # fmt: skip
    assert run_cli(bundle, "config", "set", "mirrors.huggingface", hf_endpoint.url).returncode == 0
    r = run_cli(bundle, "models", "download", "https://huggingface.co/someone/tiny-model", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert Path(out["path"]).name == "tiny.safetensors" and out["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    meta = json.loads((bundle / "models" / "Stable-diffusion" / "tiny.json").read_text(encoding="utf-8"))
    assert meta["source url"] == "https://huggingface.co/someone/tiny-model"


def test_a_file_named_safetensors_must_be_one(bundle: Path, file_server: FileServer) -> None:
    file_server.add("/fake.safetensors", b"\xff" * 4096)  # binary, not a page: only the format check sees it
    r = run_cli(bundle, "--lang", "en", "models", "download", file_server.url_for("/fake.safetensors"))
    assert r.returncode == 5 and "DOWNLOAD_WRONG_CONTENT" in r.stderr and "safetensors format" in r.stderr, r.stderr
    assert not (bundle / "models" / "Stable-diffusion" / "fake.safetensors").exists()


def test_a_gated_hugging_face_repository_asks_for_the_token_and_gets_it(
    bundle: Path, hf_endpoint: HfEndpoint, model_bytes: bytes
) -> None:
    hf_endpoint.add_repo("corp/gated", {"g.safetensors": model_bytes}, lfs=("g.safetensors",))
    hf_endpoint.gated["corp/gated"] = "hf_gAtEdT0kEn1234567890"
    assert run_cli(bundle, "config", "set", "mirrors.huggingface", hf_endpoint.url).returncode == 0
    env = {"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": ""}
    r = run_cli(bundle, "--lang", "en", "models", "download", "https://huggingface.co/corp/gated", env=env)
    assert r.returncode == 5 and "MODEL_TOKEN_NEEDED" in r.stderr and "huggingface.co/settings/tokens" in r.stderr
    assert "downloads.hf_token" in r.stderr, r.stderr
    assert run_cli(bundle, "config", "set", "downloads.hf_token", "hf_gAtEdT0kEn1234567890").returncode == 0
    r = run_cli(bundle, "models", "download", "https://huggingface.co/corp/gated", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert Path(json.loads(r.stdout)["path"]).read_bytes() == model_bytes
    assert "hf_gAtEdT0kEn1234567890" not in r.stdout + r.stderr


def test_a_link_without_a_type_goes_where_its_header_says(bundle: Path, file_server: FileServer, tmp_path: Path) -> None:
    lora = write_safetensors(tmp_path / "x.safetensors", SD15_LORA).read_bytes()
    file_server.add("/files/detail.safetensors", lora)
    r = run_cli(bundle, "--lang", "en", "models", "download", file_server.url_for("/files/detail.safetensors"), "--json")
    assert r.returncode == 0, r.stderr
    target = bundle / "models" / "Lora" / "detail.safetensors"
    assert json.loads(r.stdout)["path"] == str(target) and target.read_bytes() == lora
    assert "its header says it is a lora" in r.stderr and (bundle / "models" / "Lora" / "detail.json").exists()
    assert not (bundle / "models" / "Stable-diffusion" / "detail.safetensors").exists()


def test_a_plain_link_takes_its_name_from_the_server(bundle: Path, file_server: FileServer, model_bytes: bytes) -> None:
    file_server.add("/dl", model_bytes, headers=[("Content-Disposition", 'attachment; filename="real name.safetensors"')])
    r = run_cli(bundle, "models", "download", file_server.url_for("/dl") + "#sha256="
                + hashlib.sha256(model_bytes).hexdigest(), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert Path(json.loads(r.stdout)["path"]).name == "real name.safetensors"
