"""The fake Hugging Face hub, driven by huggingface_hub itself through ``endpoint=``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import requests
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from tests.support.hf_endpoint import HfEndpoint, Repo, git_blob_sha1

REPO = "org/tiny-sd"
WEIGHTS = os.urandom(200_000)
FILES = {
    "model.safetensors": WEIGHTS,
    "config.json": b'{"a": 1}',
    "unet/config.json": b'{"b": 2}',
    "unet/diffusion_pytorch_model.safetensors": WEIGHTS[:5000],
}
LFS = ("model.safetensors", "unet/diffusion_pytorch_model.safetensors")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub(hf_endpoint: HfEndpoint) -> HfEndpoint:
    hf_endpoint.add_repo(REPO, FILES, lfs=LFS, revisions=("main", "refs/pr/1"))
    return hf_endpoint


@pytest.fixture
def repo(hub: HfEndpoint) -> Repo:
    return hub.repos[REPO]


def test_model_info_with_files_metadata(hub: HfEndpoint, repo: Repo) -> None:
    info = HfApi(endpoint=hub.url).model_info(REPO, files_metadata=True)
    assert info.id == REPO and info.sha == repo.sha and len(repo.sha) == 40
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == set(FILES)
    for name, data in FILES.items():
        s = siblings[name]
        assert s.size == len(data)
        if name in LFS:
            assert s.lfs is not None and s.lfs.sha256 == sha256(data) and s.lfs.size == len(data)
            assert s.lfs.pointer_size > 100
        else:
            assert s.lfs is None and s.blob_id == git_blob_sha1(data)
    assert hub.requests[-1].path == f"/api/models/{REPO}?blobs=true"


def test_model_info_at_a_quoted_revision(hub: HfEndpoint, repo: Repo) -> None:
    info = HfApi(endpoint=hub.url).model_info(REPO, revision="refs/pr/1")
    assert info.sha == repo.sha and {s.rfilename for s in info.siblings or []} == set(FILES)
    assert hub.requests[-1].path == f"/api/models/{REPO}/revision/refs%2Fpr%2F1"


def test_list_files_and_tree(hub: HfEndpoint) -> None:
    api = HfApi(endpoint=hub.url)
    assert sorted(api.list_repo_files(REPO)) == sorted(FILES)
    entries = {e.path: e for e in api.list_repo_tree(REPO, recursive=True)}
    assert isinstance(entries["unet"], RepoFolder)
    weights = entries["model.safetensors"]
    assert isinstance(weights, RepoFile) and weights.lfs is not None and weights.lfs.sha256 == sha256(WEIGHTS)
    assert {e.path for e in api.list_repo_tree(REPO)} == {"unet", "model.safetensors", "config.json"}
    assert {e.path for e in api.list_repo_tree(REPO, "unet")} == {
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
    }
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(REPO, "vae"))


def test_hf_hub_download_lfs_and_regular(hub: HfEndpoint, repo: Repo, tmp_path: Path) -> None:
    for name in ("model.safetensors", "config.json"):
        path = Path(hf_hub_download(REPO, name, endpoint=hub.url, cache_dir=tmp_path))
        assert path.read_bytes() == FILES[name]
        assert path.parent.name == repo.sha
    blobs = tmp_path / "models--org--tiny-sd" / "blobs"
    assert {p.name for p in blobs.iterdir()} == {sha256(WEIGHTS), git_blob_sha1(FILES["config.json"])}
    hub.wait_idle()
    cdn = [r for r in hub.requests if r.path.startswith("/cdn/") and r.method == "GET"]
    assert len(cdn) == 1 and cdn[0].body_bytes == len(WEIGHTS)


def test_download_at_a_quoted_revision(hub: HfEndpoint, tmp_path: Path) -> None:
    path = hf_hub_download(REPO, "config.json", revision="refs/pr/1", endpoint=hub.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == FILES["config.json"]
    assert f"/{REPO}/resolve/refs%2Fpr%2F1/config.json" in {r.path for r in hub.requests}


def test_snapshot_download_to_local_dir(hub: HfEndpoint, tmp_path: Path) -> None:
    out = Path(snapshot_download(REPO, endpoint=hub.url, local_dir=tmp_path / "model"))
    for name, data in FILES.items():
        assert sha256((out / name).read_bytes()) == sha256(data)


def test_file_metadata(hub: HfEndpoint, repo: Repo) -> None:
    lfs = get_hf_file_metadata(hf_hub_url(REPO, "model.safetensors", endpoint=hub.url))
    assert (lfs.commit_hash, lfs.etag, lfs.size) == (repo.sha, sha256(WEIGHTS), len(WEIGHTS))
    assert lfs.location.startswith(f"{hub.url}/cdn/")  # same origin: the HEAD followed the redirect
    plain = get_hf_file_metadata(hf_hub_url(REPO, "config.json", endpoint=hub.url))
    assert (plain.etag, plain.size) == (git_blob_sha1(FILES["config.json"]), len(FILES["config.json"]))


def test_resolve_headers(hub: HfEndpoint, repo: Repo) -> None:
    r = requests.head(f"{hub.url}/{REPO}/resolve/main/model.safetensors", timeout=10)
    assert r.status_code == 302 and r.headers["X-Repo-Commit"] == repo.sha
    assert r.headers["X-Linked-Etag"] == f'"{sha256(WEIGHTS)}"' and r.headers["X-Linked-Size"] == str(len(WEIGHTS))
    cdn = requests.get(hub.url + r.headers["Location"], headers={"Range": "bytes=100-199"}, timeout=10)
    assert cdn.status_code == 206 and cdn.content == WEIGHTS[100:200]
    assert cdn.headers["X-Repo-Commit"] == repo.sha and cdn.headers["ETag"] == f'"{sha256(WEIGHTS)}"'


def test_not_found_kinds(hub: HfEndpoint, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.url)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/missing", "config.json", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="v9")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="v9", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RemoteEntryNotFoundError) as err:
        hf_hub_download(REPO, "missing.bin", endpoint=hub.url, cache_dir=tmp_path)
    assert isinstance(err.value, EntryNotFoundError)


def test_lfs_on_another_origin(hub: HfEndpoint, repo: Repo, tmp_path: Path) -> None:
    hub.lfs_cross_origin = True
    meta = get_hf_file_metadata(hf_hub_url(REPO, "model.safetensors", endpoint=hub.url))
    assert meta.location.startswith(f"http://localhost:{hub.port}/cdn/")  # not followed: read from the 302
    assert (meta.commit_hash, meta.etag, meta.size) == (repo.sha, sha256(WEIGHTS), len(WEIGHTS))
    path = hf_hub_download(REPO, "model.safetensors", endpoint=hub.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == WEIGHTS
    hub.wait_idle()
    cdn = [r for r in hub.requests if r.path.startswith("/cdn/")]
    assert [(r.method, r.headers["Host"]) for r in cdn] == [("GET", f"localhost:{hub.port}")]


def test_dropped_cdn_connection_is_retried(hub: HfEndpoint, tmp_path: Path) -> None:
    faults = hub.faults(REPO, "model.safetensors")
    faults.drop_after, faults.drop_requests = 1000, 1
    path = hf_hub_download(REPO, "model.safetensors", endpoint=hub.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == WEIGHTS
    hub.wait_idle()
    assert hub.bytes_served("/cdn/") == 1000 + len(WEIGHTS)  # under one 10 MiB chunk: fetched again whole


def test_html_page_from_the_cdn_fails_the_size_check(hub: HfEndpoint, tmp_path: Path) -> None:
    hub.lfs_cross_origin = True  # metadata comes from the 302, the bytes from the "CDN"
    hub.faults(REPO, "model.safetensors").html_error = True
    with pytest.raises(OSError, match="Consistency check failed"):
        hf_hub_download(REPO, "model.safetensors", endpoint=hub.url, cache_dir=tmp_path)


def test_cdn_status_fault(hub: HfEndpoint, tmp_path: Path) -> None:
    hub.lfs_cross_origin = True
    hub.faults(REPO, "model.safetensors").status = 403
    with pytest.raises(HfHubHTTPError) as err:
        hf_hub_download(REPO, "model.safetensors", endpoint=hub.url, cache_dir=tmp_path)
    assert err.value.response is not None and err.value.response.status_code == 403


def test_faults_on_a_regular_file_apply_to_resolve(hub: HfEndpoint) -> None:
    hub.faults(REPO, "config.json").lfs_pointer = True
    r = requests.get(f"{hub.url}/{REPO}/resolve/main/config.json", timeout=10)
    assert r.text.startswith("version https://git-lfs.github.com/spec/v1\n")


def test_add_repo_checks_its_arguments(hf_endpoint: HfEndpoint) -> None:
    with pytest.raises(ValueError, match="namespace/name"):
        hf_endpoint.add_repo("tiny", {"a": b""})
    with pytest.raises(ValueError, match="lfs files"):
        hf_endpoint.add_repo("org/x", {"a": b""}, lfs=("b",))
