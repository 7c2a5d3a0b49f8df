"""The ModelScope stand-in, checked with plain HTTP requests the way ModelScope's SDK and installers make them."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.modelscope_endpoint import ModelScopeEndpoint

REPO = "AI-ModelScope/tiny-sd"
WEIGHTS = os.urandom(1 << 20)
FILES = {"v1-5.safetensors": WEIGHTS, "unet/config.json": b'{"b": 2}', "model_index.json": b"{}"}


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def ms(modelscope_endpoint: ModelScopeEndpoint) -> ModelScopeEndpoint:
    modelscope_endpoint.add_repo(REPO, FILES)
    return modelscope_endpoint


def test_both_download_routes_serve_the_bytes(ms: ModelScopeEndpoint) -> None:
    for url in (ms.file_url(REPO, "v1-5.safetensors"), ms.resolve_url(REPO, "v1-5.safetensors")):
        status, _, body = get(url)
        assert status == 200 and body == WEIGHTS
    assert get(ms.file_url(REPO, "unet/config.json"))[2] == b'{"b": 2}'
    assert get(f"{ms.url}/api/v1/models/{REPO}/repo?Revision=master&FilePath=unet%2Fconfig.json")[2] == b'{"b": 2}'


def test_range_gives_206_and_the_slice(ms: ModelScopeEndpoint) -> None:
    status, headers, body = get(ms.file_url(REPO, "v1-5.safetensors"), {"Range": "bytes=100-"})
    assert status == 206 and body == WEIGHTS[100:]
    assert headers["Content-Range"] == f"bytes 100-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"


def test_listing_has_sha256_and_size(ms: ModelScopeEndpoint) -> None:
    status, _, body = get(ms.listing_url(REPO))
    doc = json.loads(body)
    assert status == 200 and doc["Code"] == 200 and doc["Success"] is True
    blobs = {f["Path"]: f for f in doc["Data"]["Files"] if f["Type"] == "blob"}
    assert set(blobs) == set(FILES)
    for path, data in FILES.items():
        assert blobs[path]["Sha256"] == hashlib.sha256(data).hexdigest()
        assert blobs[path]["Size"] == len(data) and blobs[path]["Name"] == path.rsplit("/", 1)[-1]
    assert blobs["v1-5.safetensors"]["IsLFS"] is True and blobs["model_index.json"]["IsLFS"] is False
    assert [f["Path"] for f in doc["Data"]["Files"] if f["Type"] == "tree"] == ["unet"]
    top = json.loads(get(f"{ms.url}/api/v1/models/{REPO}/repo/files?Revision=master")[2])["Data"]["Files"]
    assert {f["Path"] for f in top} == {"unet", "v1-5.safetensors", "model_index.json"}


def test_unknown_repo_file_and_revision_are_404(ms: ModelScopeEndpoint) -> None:
    status, _, body = get(ms.file_url("nobody/none", "x"))
    assert status == 404 and json.loads(body)["Success"] is False
    assert get(ms.file_url(REPO, "missing.bin"))[0] == 404
    assert get(ms.resolve_url(REPO, "v1-5.safetensors", revision="v9"))[0] == 404
    assert get(ms.listing_url(REPO, revision="v9"))[0] == 404


def test_token_is_required_once_set(ms: ModelScopeEndpoint) -> None:
    ms.token = "s3cret"
    assert get(ms.file_url(REPO, "model_index.json"))[0] == 401
    assert get(ms.file_url(REPO, "model_index.json"), {"Authorization": "Bearer wrong"})[0] == 401
    status, _, body = get(ms.file_url(REPO, "model_index.json"), {"Authorization": "Bearer s3cret"})
    assert status == 200 and body == b"{}"


def test_faults_apply_to_both_routes(ms: ModelScopeEndpoint) -> None:
    ms.faults(REPO, "v1-5.safetensors").status = 503
    assert get(ms.file_url(REPO, "v1-5.safetensors"))[0] == 503
    assert get(ms.resolve_url(REPO, "v1-5.safetensors"))[0] == 503


def test_add_folder_publishes_each_owner_name(ms: ModelScopeEndpoint, tmp_path: Path) -> None:
    tmp_path = tmp_path / "repos"
    (tmp_path / "org" / "one" / "sub").mkdir(parents=True)
    (tmp_path / "org" / "one" / "sub" / "a.txt").write_bytes(b"A")
    (tmp_path / "org" / "two").mkdir(parents=True)
    (tmp_path / "org" / "two" / "b.bin").write_bytes(b"B")
    added = ms.add_folder(tmp_path)
    assert [r.repo_id for r in added] == ["org/one", "org/two"]
    assert get(ms.resolve_url("org/one", "sub/a.txt"))[2] == b"A"
    assert get(ms.file_url("org/two", "b.bin"))[2] == b"B"
    ms.wait_idle()
    assert ms.bytes_served("/models/org/one/") == 1
