"""Links: recognising every form, picking the file, credentials kept to their host, metadata, base models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from launcher.downloads.redirects import headers_for
from launcher.errors import LinkNotFound, ModelFileChoice, TokenNeeded, UnsupportedLink
from launcher.models.base_model import mismatch
from launcher.models.civitai import Choice, pick_file, resolve_civitai
from launcher.models.links import CatalogName, CivitaiLink, HfLink, ModelScopeLink, UrlLink, parse_link
from launcher.models.repo_files import choose_model_file
from launcher.models.sidecar import Sidecar, family, sd_version, write_sidecars
from tests.support.civitai_endpoint import CivitaiEndpoint


@pytest.mark.parametrize(("text", "want"), [
    ("https://civitai.com/models/4384/dreamshaper?modelVersionId=128713",
     CivitaiLink("4384", "128713", original="https://civitai.com/models/4384/dreamshaper?modelVersionId=128713")),
    ("https://civitai.green/models/4384", CivitaiLink("4384", original="https://civitai.green/models/4384")),
    ("https://www.civitai.com/api/download/models/128713?type=Model&format=SafeTensor",
     CivitaiLink(version="128713", original="https://www.civitai.com/api/download/models/128713?type=Model&format=SafeTensor")),
    ("civitai:4384@128713", CivitaiLink("4384", "128713", original="civitai:4384@128713")),
    ("urn:air:sdxl:lora:civitai:328553@368189", CivitaiLink("328553", "368189", original="urn:air:sdxl:lora:civitai:328553@368189")),
    ("air:sdxl:checkpoint:civitai:827184@2514310+99.safetensor",
     CivitaiLink("827184", "2514310", "99", original="air:sdxl:checkpoint:civitai:827184@2514310+99.safetensor")),
    ("sd1:lora:civitai:5", CivitaiLink("5", original="sd1:lora:civitai:5")),
    ("https://modelscope.cn/models/AI-ModelScope/sd15/summary",
     ModelScopeLink("AI-ModelScope/sd15", "", "master", "https://modelscope.cn/models/AI-ModelScope/sd15/summary")),
    ("https://www.modelscope.ai/models/a/b/file/view/master/sub/m.safetensors?status=2",
     ModelScopeLink("a/b", "sub/m.safetensors", "master", "https://www.modelscope.ai/models/a/b/file/view/master/sub/m.safetensors?status=2")),
    ("https://modelscope.cn/models/a/b/resolve/v2/m.safetensors",
     ModelScopeLink("a/b", "m.safetensors", "v2", "https://modelscope.cn/models/a/b/resolve/v2/m.safetensors")),
    ("modelscope:a/b/m.ckpt", ModelScopeLink("a/b", "m.ckpt", "master", "modelscope:a/b/m.ckpt")),
    ("https://huggingface.co/org/repo", HfLink("org/repo", "", "main", "https://huggingface.co/org/repo")),
    ("https://hf-mirror.com/org/repo/blob/v1/f%20x.safetensors",
     HfLink("org/repo", "f x.safetensors", "v1", "https://hf-mirror.com/org/repo/blob/v1/f%20x.safetensors")),
    ("https://dl.example.com/a.safetensors#sha256=" + "A" * 64, UrlLink("https://dl.example.com/a.safetensors", "a" * 64)),
    ("org/repo/file.safetensors", CatalogName("org/repo/file.safetensors")),
    ("sd15", CatalogName("sd15")),
])  # fmt: skip
def test_every_link_form_is_recognised(text: str, want: object) -> None:
    assert parse_link(text) == want


def test_a_configured_endpoint_counts_as_its_site() -> None:
    link = parse_link("http://127.0.0.1:9/api/download/models/12", civitai_hosts=["127.0.0.1:9"])
    assert link == CivitaiLink(version="12", original="http://127.0.0.1:9/api/download/models/12")
    assert isinstance(parse_link("http://127.0.0.1:8/api/download/models/12", civitai_hosts=["127.0.0.1:9"]), UrlLink)


@pytest.mark.parametrize(("text", "words"), [
    ("ftp://example.com/m.safetensors", "ftp://"),
    ("magnet:?xt=urn:btih:abc", "identifier"),
    ("https://civitai.com/images/123", "model page"),
    ("https://modelscope.cn/datasets/a/b", "model repository"),
    ("https://huggingface.co/spaces/a/b", "Hugging Face page"),
    ("  ", "nothing"),
])  # fmt: skip
def test_unsupported_forms_say_why_and_list_what_works(text: str, words: str) -> None:
    with pytest.raises(UnsupportedLink) as err:
        parse_link(text)
    assert words in err.value.message("en")
    assert "civitai:ID@VERSION" in err.value.hint("en") and "魔搭" in err.value.hint("zh")


FILES = [
    {"id": 1, "name": "a-fp16.safetensors", "primary": True, "type": "Model", "metadata": {"fp": "fp16", "size": "pruned"}},
    {"id": 2, "name": "a-fp32.safetensors", "type": "Model", "metadata": {"fp": "fp32", "size": "full"}},
    {"id": 3, "name": "a.vae.pt", "type": "VAE", "metadata": {}},
]  # fmt: skip


def test_the_file_of_a_civitai_version() -> None:
    assert pick_file(FILES, Choice(), "", "v")["id"] == 1
    assert pick_file(FILES, Choice(variant="full"), "", "v")["id"] == 2
    assert pick_file(FILES, Choice(variant="fp32"), "", "v")["id"] == 2
    assert pick_file(FILES, Choice(file="vae"), "", "v")["id"] == 3
    assert pick_file(FILES, Choice(), "3", "v")["id"] == 3
    with pytest.raises(ModelFileChoice, match="a-fp32.safetensors \\(fp32, full\\)"):
        pick_file(FILES, Choice(file="b.safetensors"), "", "v")
    no_primary = [dict(f, primary=False) for f in FILES[:2]]
    with pytest.raises(ModelFileChoice):
        pick_file(no_primary, Choice(), "", "v")


def test_the_model_file_of_a_repository() -> None:
    assert choose_model_file(["README.md", "m.safetensors", "unet/x.safetensors"], "", "r") == "m.safetensors"
    assert choose_model_file(["m.ckpt", "m.safetensors"], "", "r") == "m.safetensors"
    assert choose_model_file(["a.safetensors", "sub/b.safetensors"], "b.safetensors", "r") == "sub/b.safetensors"
    with pytest.raises(ModelFileChoice, match="a.safetensors; b.safetensors"):
        choose_model_file(["a.safetensors", "b.safetensors"], "", "r")
    with pytest.raises(LinkNotFound):
        choose_model_file(["README.md"], "", "r")


def test_names_from_sites_stay_in_their_folder() -> None:
    from launcher.models.fetch import bare_name

    assert bare_name("../../evil.safetensors") == "evil.safetensors"
    assert bare_name("..\\..\\x.ckpt") == "x.ckpt"
    assert bare_name('a:b?.safetensors') == "a_b_.safetensors"
    assert bare_name("..") == "download.safetensors"


def test_credentials_go_to_their_own_host_only() -> None:
    h = {"Authorization": "Bearer t", "Cookie": "c", "User-Agent": "y"}
    assert headers_for("https://civitai.com/api/download/models/1", "https://civitai.com/x", h) == h
    assert headers_for("https://civitai.com/a", "https://b2.civitai-cdn.example/signed", h) == {"User-Agent": "y"}
    assert headers_for("http://127.0.0.1:5/a", "http://127.0.0.1:6/a", h) == {"User-Agent": "y"}
    assert headers_for("https://civitai.com/a", "https://civitai.com:443/b", h) == h


def test_civitai_resolves_through_the_endpoint_with_the_token(civitai_endpoint: CivitaiEndpoint) -> None:
    data = b"weights" * 100
    civitai_endpoint.add_model(model_id=1, version_id=11, kind="LoCon", base_model="SDXL 1.0", files={"x.safetensors": data},
                               trained_words=["xx"])  # fmt: skip
    civitai_endpoint.add_model(model_id=1, version_id=10, kind="LoCon", files={"old.safetensors": data})
    plan = resolve_civitai(CivitaiLink(model="1"), civitai_endpoint.url, "tok-123456")  # newest version
    assert plan.filename == "x.safetensors" and plan.kind == "lora" and plan.sha256 == hashlib.sha256(data).hexdigest()
    assert plan.sources[0].url.startswith(civitai_endpoint.url + "/api/download/models/11?")
    assert plan.sources[0].headers == {"Authorization": "Bearer tok-123456"}
    assert plan.sidecar is not None and plan.sidecar.base_model == "SDXL 1.0" and plan.sidecar.trigger_words == ("xx",)
    civitai_endpoint.wait_idle()
    assert all(r.headers.get("Authorization") == "Bearer tok-123456" for r in civitai_endpoint.requests)
    with pytest.raises(LinkNotFound, match="model version 404"):
        resolve_civitai(CivitaiLink(version="404"), civitai_endpoint.url, "")
    civitai_endpoint.add_model(model_id=2, version_id=22, kind="Wildcards", files={"w.zip": b"PK"})
    with pytest.raises(UnsupportedLink, match="Wildcards"):
        resolve_civitai(CivitaiLink(version="22"), civitai_endpoint.url, "")


def test_a_401_from_the_api_asks_for_a_token() -> None:
    from launcher.models.tokens import CIVITAI, token_needed

    missing, refused = token_needed(CIVITAI, "m", sent=False), token_needed(CIVITAI, "m", sent=True)
    assert isinstance(missing, TokenNeeded) and "No token is set" in missing.message("en")
    assert "refused" in refused.message("en") and "civitai.com/user/account" in refused.hint("zh")


def test_base_models_and_what_the_user_runs() -> None:
    assert [sd_version(b) for b in ("SD 1.5", "SD 2.1 768", "SDXL 1.0", "Pony", "Illustrious", "Flux.1 D")] == [
        "SD1", "SD2", "SDXL", "SDXL", "SDXL", "Unknown"]  # fmt: skip
    assert family("SDXL Lightning") == "sdxl" and family("Flux.1 D") is None
    assert mismatch("SDXL 1.0", "lora", ["sd15"]) is not None
    assert mismatch("SDXL 1.0", "lora", ["sd15", "sdxl"]) is None
    assert mismatch("SDXL 1.0", "lora", []) is None  # no checkpoint yet: nothing to compare with
    assert mismatch("Flux.1 D", "checkpoint", []) is not None
    assert mismatch("SD 1.5", "checkpoint", ["sdxl"]) is None


def test_sidecars_keep_what_the_user_wrote(tmp_path: Path) -> None:
    model = tmp_path / "Lora" / "s.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"x")
    (tmp_path / "Lora" / "s.json").write_text(json.dumps({"activation text": "my words", "preferred weight": 0.7}))
    side = Sidecar(site="civitai", source_url="https://civitai.com/models/1?modelVersionId=2", version="v1",
                   base_model="SD 1.5", trigger_words=("a", "b"), description="<p>Hi<br>there</p>",
                   preview_url="http://x/p.png", civitai_info={"id": 2})  # fmt: skip
    notes: list[str] = []

    def broken(url: str) -> bytes:
        raise OSError("unreachable")

    written = write_sidecars(model, side, "ab" * 32, say=notes.append, fetch_preview=broken)
    meta = json.loads((tmp_path / "Lora" / "s.json").read_text())
    assert meta["activation text"] == "my words" and meta["preferred weight"] == 0.7  # the user's own
    assert meta["description"] == "Hi\nthere" and meta["sd version"] == "SD1" and meta["sha256"] == "ab" * 32
    assert json.loads((tmp_path / "Lora" / "s.civitai.info").read_text()) == {"id": 2}
    assert not (tmp_path / "Lora" / "s.preview.png").exists() and "preview" in notes[0] and len(written) == 2


@pytest.mark.parametrize(
    ("data", "name"),
    [(b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "s.preview.png"), (b"\xff\xd8\xff\xe0" + b"\0" * 20, "s.preview.jpg"),
     (b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 20, "s.preview.webp"), (b"GIF89a" + b"\0" * 20, "s.preview.gif")],
)  # fmt: skip
def test_the_preview_is_named_by_what_its_bytes_are(tmp_path: Path, data: bytes, name: str) -> None:
    """Civitai sends JPEG and WebP previews too; A1111's cards look for NAME.preview.{png,jpg,jpeg,webp,gif}."""
    model = tmp_path / "Lora" / "s.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"x")
    side = Sidecar(site="civitai", source_url="https://civitai.com/models/1", preview_url="http://x/p")
    written = write_sidecars(model, side, "ab" * 32, fetch_preview=lambda url: data)
    assert (tmp_path / "Lora" / name).read_bytes() == data and (tmp_path / "Lora" / name) in written
    assert write_sidecars(model, side, "ab" * 32, fetch_preview=lambda url: b"\x89PNG\r\n\x1a\n") == written[:1]


def test_a_video_or_a_page_is_not_saved_as_a_preview(tmp_path: Path) -> None:
    model = tmp_path / "Lora" / "s.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"x")
    notes: list[str] = []
    side = Sidecar(site="civitai", source_url="https://civitai.com/models/1", preview_url="http://x/p.mp4")
    write_sidecars(model, side, "ab" * 32, say=notes.append, fetch_preview=lambda url: b"\0\0\0\x18ftypmp42")
    assert not list((tmp_path / "Lora").glob("s.preview.*")) and "preview" in notes[0]
