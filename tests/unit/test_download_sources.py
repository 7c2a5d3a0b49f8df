"""What `models download TARGET` resolves to: catalog names, Hugging Face files, plain URLs (links: test_model_links)."""

from __future__ import annotations

import hashlib

import pytest

from bootstrap.layout import Bundle
from launcher.downloads.sources import (
    HfFile,
    parse_hf,
    resolve_target,
    split_fragment,
    valid_sha256,
)
from launcher.mirrors.fallback import MirrorProblem
from launcher.mirrors.sources import Source
from launcher.models.catalog import UnknownModel, catalog_path, load_model_catalog
from tests.support.hf_endpoint import HfEndpoint
from tests.support.httpbase import free_port

CATALOG = load_model_catalog(catalog_path(Bundle.locate({})))


def endpoint(url: str, mid: str = "local") -> Source:
    return Source("huggingface", mid, url, "hf", mid, mid)


def test_parse_forms() -> None:
    hosts = ["hf-mirror.com"]
    assert parse_hf("org/repo/sub/file.safetensors", hosts) == HfFile("org/repo", "sub/file.safetensors")
    assert parse_hf("org/repo:file.safetensors", hosts) == HfFile("org/repo", "file.safetensors")
    assert parse_hf("https://hf-mirror.com/org/repo/blob/v1%2E0/f.safetensors", hosts) == HfFile(
        "org/repo", "f.safetensors", "v1.0"
    )
    assert parse_hf("https://example.com/org/repo/resolve/main/f", hosts) is None
    assert split_fragment("https://x/f.bin#sha256=" + "A" * 64) == ("https://x/f.bin", "a" * 64)
    assert valid_sha256(" " + "F" * 64) == "f" * 64
    with pytest.raises(ValueError):
        valid_sha256("abc")


def test_hf_metadata_gives_the_lfs_hash_and_every_endpoint_is_a_source(hf_endpoint: HfEndpoint) -> None:
    data = b"weights" * 1000
    repo = hf_endpoint.add_repo("org/model", {"m.safetensors": data}, lfs=("m.safetensors",))
    dead = endpoint(f"http://127.0.0.1:{free_port()}", "dead")
    plan, carried = resolve_target(
        "org/model/m.safetensors", catalog=CATALOG, endpoints=[dead, endpoint(hf_endpoint.url)]
    )
    assert carried is None and plan.sha256 == hashlib.sha256(data).hexdigest() and plan.size == len(data)
    assert [s.mirror_id for s in plan.sources] == ["dead", "local"]
    assert all(f"/resolve/{repo.sha}/m.safetensors" in s.url for s in plan.sources)  # pinned to the commit
    assert any("dead" in n for n in plan.notes)


def test_catalog_entry_falls_back_to_modelscope_when_no_hub_answers() -> None:
    entry = next(e for e in CATALOG.entries if e.modelscope is not None and not e.modelscope.own_file)
    dead = endpoint(f"http://127.0.0.1:{free_port()}", "dead")
    plan, _ = resolve_target(entry.id, catalog=CATALOG, endpoints=[dead])
    assert [s.label for s in plan.sources] == ["ModelScope"]
    assert plan.sources[0].url.startswith("https://www.modelscope.cn/models/")
    assert plan.sha256 == (entry.sha256 or None) and plan.kind == entry.type


def test_unknown_names_and_unreachable_hubs() -> None:
    with pytest.raises(UnknownModel):
        resolve_target("no-such-model", catalog=CATALOG, endpoints=[])
    dead = endpoint(f"http://127.0.0.1:{free_port()}", "dead")
    with pytest.raises(MirrorProblem, match="dead: connection refused"):
        resolve_target("org/x/y.safetensors", catalog=CATALOG, endpoints=[dead])


def test_plain_url_keeps_its_fragment_hash() -> None:
    plan, carried = resolve_target(
        "https://dl.example.com/a%20b.safetensors#sha256=" + "1" * 64, catalog=None, endpoints=[]
    )
    assert (
        plan.filename == "a b.safetensors"
        and carried == "1" * 64
        and plan.sources[0].url == "https://dl.example.com/a%20b.safetensors"
    )
