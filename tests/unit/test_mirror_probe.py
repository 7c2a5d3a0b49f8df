"""Probing mirrors against local stand-ins: every way a mirror fails gets its own reason."""

from __future__ import annotations

from pathlib import Path

from launcher.mirrors.probe import Target, probe, probe_all, rank
from tests.support.fileserver import FileServer
from tests.support.hf_endpoint import HfEndpoint
from tests.support.plugin_mirrors import MirrorFarm
from tests.support.pypi_index import PackageIndex


def pep503(index_url: str, mid: str = "m") -> Target:
    return Target("pypi", mid, index_url, index_url + "/pip/", "pep503")


def test_a_healthy_index_is_measured(mirror_farm: MirrorFarm) -> None:
    r = probe(pep503(mirror_farm.fast.simple_url()), timeout=2)
    assert r.ok and r.error == "" and r.status == 200
    assert r.connect_ms is not None and r.ttfb_ms is not None and r.total_ms is not None
    assert r.tls_ms is None  # plain http: no handshake
    assert r.bytes > 0 and r.bytes_per_s is not None and r.bytes_per_s > 0


def test_each_failure_has_its_reason(mirror_farm: MirrorFarm) -> None:
    assert probe(pep503(mirror_farm.dead_url + "/simple"), 1).error == "connection refused"
    assert probe(pep503(mirror_farm.forbidden.simple_url()), 1).error == "HTTP 403"
    assert probe(pep503(mirror_farm.html.simple_url()), 1).error == "not a package index (wrong content)"
    assert probe(pep503(mirror_farm.slow.simple_url()), 0.5).error == "timed out"
    assert probe(pep503("http://nonexistent.invalid/simple"), 1).error == "DNS lookup failed"


def test_a_project_missing_from_the_mirror_is_a_404(mirror_farm: MirrorFarm) -> None:
    mirror_farm.fast.hide("pip")
    r = probe(pep503(mirror_farm.fast.simple_url()), 1)
    assert not r.ok and r.error == "HTTP 404"


def test_probe_all_ranks_fast_first_and_bounds_the_wait(mirror_farm: MirrorFarm) -> None:
    targets = [
        pep503(mirror_farm.slow.simple_url(), "slow"),
        pep503(mirror_farm.dead_url + "/simple", "dead"),
        pep503(mirror_farm.fast.simple_url(), "fast"),
        pep503(mirror_farm.forbidden.simple_url(), "403"),
        pep503(mirror_farm.html.simple_url(), "html"),
    ]
    ranked = rank(probe_all(targets, timeout=0.8))
    assert [r.id for r in ranked][0] == "fast"
    assert {r.id: r.error for r in ranked[1:]} == {
        "slow": "timed out", "dead": "connection refused", "403": "HTTP 403",
        "html": "not a package index (wrong content)",
    }  # fmt: skip


def test_two_healthy_mirrors_rank_by_time(mirror_wheels: Path) -> None:
    with PackageIndex(root=mirror_wheels) as quick, PackageIndex(root=mirror_wheels) as sluggish:
        sluggish.slow_down(0.3)
        ranked = rank(probe_all([pep503(sluggish.simple_url(), "b"), pep503(quick.simple_url(), "a")], timeout=3))
    assert [r.id for r in ranked] == ["a", "b"] and all(r.ok for r in ranked)


def test_flat_listing_local_folder_and_hf_endpoint(
    flat_index: PackageIndex, tmp_path: Path, hf_endpoint: HfEndpoint
) -> None:
    flat = flat_index.flat_url("cu128")
    assert probe(Target("torch", "f", flat, flat, "flat"), 2).ok
    assert probe(Target("torch", "f", flat, flat_index.simple_url("cu128") + "/", "flat"), 2).error.startswith(
        "no wheels"
    )
    assert probe(Target("pypi", "l", str(tmp_path), str(tmp_path), "local"), 1).error == "no wheels in the folder"
    (tmp_path / "x-1.0-py3-none-any.whl").write_bytes(b"")
    assert probe(Target("pypi", "l", str(tmp_path), str(tmp_path), "local"), 1).ok
    hf_endpoint.add_repo("openai-community/gpt2", {"config.json": b"{}"})
    api = hf_endpoint.url + "/api/models/openai-community/gpt2"
    assert probe(Target("huggingface", "h", hf_endpoint.url, api, "hf"), 2).ok
    assert (
        probe(Target("huggingface", "h", hf_endpoint.url, hf_endpoint.url + "/api/models/no/such", "hf"), 2).error
        == "HTTP 404"
    )


def test_redirects_are_followed(hf_endpoint: HfEndpoint) -> None:
    hf_endpoint.add_repo("org/model", {"model.safetensors": b"w" * 4096}, lfs=("model.safetensors",))
    url = hf_endpoint.url + "/org/model/resolve/main/model.safetensors"  # a 302 to the CDN route
    r = probe(Target("huggingface", "h", hf_endpoint.url, url, "pbs"), 2)
    assert r.ok and r.status == 200 and r.bytes == 4096


def test_html_served_for_a_file_is_wrong_content(file_server: FileServer) -> None:
    file_server.add("/python-3.11.9-embed-amd64.zip", b"PK\x03\x04" + b"\0" * 5000)
    url = file_server.url_for("/python-3.11.9-embed-amd64.zip")
    assert probe(Target("python", "e", url, url, "embed"), 2).ok
    file_server.faults("/python-3.11.9-embed-amd64.zip").html_error = True
    assert "HTML page" in probe(Target("python", "e", url, url, "embed"), 2).error
