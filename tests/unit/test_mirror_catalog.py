"""mirrors.toml holds the facts from the knowledge base, and never defaults to an unverified mirror."""

from __future__ import annotations

import re

import pytest

from launcher.config import BY_KEY
from launcher.mirrors.catalog import CHANNELS, STATUSES, load_catalog
from tests.support.hermetic import REPO

CATALOG = load_catalog(REPO / "mirrors.toml")

# Exact URLs from ../shared/knowledge/compat-and-mirrors.md §4 (verified or reported rows).
KNOWN = {
    ("pypi", "tuna"): "https://pypi.tuna.tsinghua.edu.cn/simple",
    ("pypi", "bfsu"): "https://mirrors.bfsu.edu.cn/pypi/web/simple",
    ("pypi", "aliyun"): "https://mirrors.aliyun.com/pypi/simple",
    ("pypi", "tencent"): "https://mirrors.cloud.tencent.com/pypi/simple",
    ("pypi", "huawei"): "https://mirrors.huaweicloud.com/repository/pypi/simple",
    ("pypi", "nju"): "https://mirror.nju.edu.cn/pypi/web/simple",
    ("pypi", "ustc"): "https://mirrors.ustc.edu.cn/pypi/simple",
    ("pypi", "pypi"): "https://pypi.org/simple",
    ("torch", "official"): "https://download.pytorch.org/whl/{cuda}",
    ("torch", "aliyun"): "https://mirrors.aliyun.com/pytorch-wheels/{cuda}/",
    ("torch", "nju"): "https://mirror.nju.edu.cn/pytorch/whl/{cuda}",
    ("huggingface", "hf-mirror"): "https://hf-mirror.com",
    ("huggingface", "huggingface"): "https://huggingface.co",
    ("python", "npmmirror"): "https://registry.npmmirror.com/-/binary/python-build-standalone",
}


def test_all_seven_channels_have_entries_and_one_official() -> None:
    assert tuple(CATALOG.channels) == CHANNELS == ("pypi", "torch", "huggingface", "python", "github", "civitai",
                                                   "modelscope")  # fmt: skip
    for name, ch in CATALOG.channels.items():
        assert ch.mirrors, name
        assert sum(m.official for m in ch.mirrors) >= 1, name
        assert ch.name_zh != ch.name_en


@pytest.mark.parametrize(("key", "url"), KNOWN.items(), ids=lambda v: "/".join(v) if isinstance(v, tuple) else "")
def test_urls_match_the_knowledge_base(key: tuple[str, str], url: str) -> None:
    mirror = CATALOG.channel(key[0]).get(key[1])
    assert mirror is not None and mirror.url == url


def test_entries_are_complete_and_well_formed() -> None:
    for ch in CATALOG.channels.values():
        assert len(set(ch.ids)) == len(ch.ids)
        for m in ch.mirrors:
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", m.id), m.id
            assert m.url.startswith("https://"), m.id  # no plain-http mirror is shipped
            assert m.status in STATUSES and m.kind and m.name_zh and m.name_en, m.id
            if ch.id == "torch":
                assert "{cuda}" in m.url, m.id
            assert not (m.official and m.status != "verified"), m.id


def test_torch_index_kinds() -> None:
    torch = CATALOG.channel("torch")
    assert torch.get("aliyun").kind == "flat"  # type: ignore[union-attr]
    assert torch.get("official").kind == torch.get("nju").kind == "pep503"  # type: ignore[union-attr]


def test_unverified_mirrors_are_never_automatic_or_default() -> None:
    for ch in CATALOG.channels.values():
        for m in ch.mirrors:
            assert m.automatic == (m.status != "unverified")
    assert CATALOG.channel("pypi").get("sjtu").automatic is False  # type: ignore[union-attr]
    assert all(not m.automatic for m in CATALOG.channel("github").mirrors if not m.official)
    assert BY_KEY["mirrors.github"].default == "off"
    for ch in ("pypi", "torch", "huggingface", "python", "civitai", "modelscope"):
        assert BY_KEY[f"mirrors.{ch}"].default == "auto"
    assert CATALOG.channel("civitai").get("civitai").official  # type: ignore[union-attr]
    assert CATALOG.channel("civitai").by_alias("c站").id == "civitai"  # type: ignore[union-attr]
    assert CATALOG.channel("modelscope").by_alias("魔搭").id == "modelscope-cn"  # type: ignore[union-attr]


def test_aliases_are_unique_within_a_channel() -> None:
    for ch in CATALOG.channels.values():
        names = [a.lower() for m in ch.mirrors for a in (m.id, *m.aliases)]
        assert len(names) == len(set(names)), ch.id
    assert CATALOG.channel("pypi").by_alias("清华").id == "tuna"  # type: ignore[union-attr]
    assert CATALOG.channel("pypi").by_alias("TSINGHUA").id == "tuna"  # type: ignore[union-attr]
    assert CATALOG.channel("pypi").by_alias("nowhere") is None
