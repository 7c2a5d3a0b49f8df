"""From a choice to the ordered sources: explicit first, then healthy, then failed."""

from __future__ import annotations

from pathlib import Path

from launcher.mirrors.catalog import load_catalog
from launcher.mirrors.ranking import Ranking
from launcher.mirrors.sources import candidates, from_value
from tests.support.hermetic import REPO

CATALOG = load_catalog(REPO / "mirrors.toml")
PYPI = CATALOG.channel("pypi")
TORCH = CATALOG.channel("torch")


def ids(sources) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.id for s in sources]


def test_auto_without_measurement_follows_the_catalog_and_skips_unverified() -> None:
    order = ids(candidates(PYPI, "auto"))
    assert order[0] == "tuna" and order[-1] == "pypi"
    assert "sjtu" not in order


def test_auto_uses_the_measurement_and_puts_failures_last() -> None:
    r = Ranking(
        results={
            "pypi": [{"id": "ustc", "ok": True}, {"id": "pypi", "ok": True}, {"id": "tuna", "ok": False, "error": "x"}]
        }
    )
    order = ids(candidates(PYPI, "auto", r))
    assert order[:2] == ["ustc", "pypi"]
    assert order[-1] == "tuna"
    r.failures = {"pypi": {"ustc": "HTTP 403"}}
    assert ids(candidates(PYPI, "auto", r))[0] == "pypi"


def test_explicit_choice_comes_first_even_unverified_and_auto_follows() -> None:
    order = candidates(PYPI, "sjtu")
    assert ids(order)[0] == "sjtu" and ids(order).count("sjtu") == 1
    assert len(order) > 5


def test_urls_folders_and_torch_variants(tmp_path: Path) -> None:
    custom = candidates(PYPI, "https://m.example/simple/")
    assert custom[0].id == "custom" and custom[0].probe_url == "https://m.example/simple/pip/"
    local = candidates(TORCH, str(tmp_path), cuda="cu121")
    assert local[0].kind == "local" and local[0].url == str(tmp_path)
    nju = candidates(TORCH, "nju", cuda="cu121")[0]
    assert nju.url == "https://mirror.nju.edu.cn/pytorch/whl/cu121" and nju.probe_url.endswith("/cu121/torch/")
    aliyun = from_value("aliyun", TORCH, cuda="cpu")
    assert aliyun is not None and aliyun.kind == "flat" and aliyun.url.endswith("/pytorch-wheels/cpu/")
    flat = from_value("flat+https://w.example/{cuda}/", TORCH, cuda="cu128")
    assert flat is not None and flat.kind == "flat" and flat.url == "https://w.example/cu128/"


def test_github_off_means_no_proxy_and_python_embed_fills_the_version() -> None:
    assert candidates(CATALOG.channel("github"), "off") == []
    embed = from_value("npmmirror-embed", CATALOG.channel("python"), version="3.11.9")
    assert embed is not None and embed.url.endswith("/3.11.9/python-3.11.9-embed-amd64.zip")
    assert embed.probe_url == embed.url
    gh = from_value("ghfast", CATALOG.channel("github"))
    assert (
        gh is not None
        and gh.probe_url == "https://ghfast.top/https://raw.githubusercontent.com/astral-sh/uv/main/README.md"
    )
