"""Checking a mirror the user typed in (a URL or a folder) before it is saved: ``mirrors use`` and the
网络/镜像 page both ask here."""

from __future__ import annotations

from launcher.mirrors.sources import Source

# What each channel's source must be, for the message when it is not.
EXPECT = {
    "pypi": ("PyPI 索引（simple 页面）", "a PyPI simple index"),
    "torch": ("PyTorch 轮子索引或文件列表", "a PyTorch wheel index or flat listing"),
    "huggingface": ("Hugging Face 兼容的 API", "a Hugging Face compatible API"),
    "python": ("Python 安装包的下载地址", "a download location for Python builds"),
    "github": ("GitHub 加速前缀", "a GitHub proxy prefix"),
    "civitai": ("Civitai 兼容的 API（/api/v1/models）", "a Civitai compatible API (/api/v1/models)"),
    "modelscope": ("魔搭（ModelScope）兼容的 API", "a ModelScope compatible API"),
}


def check_source(source: Source, timeout: float, proxy: str) -> Source:
    """Probe a user-given source; for torch URLs, tell an index from a flat listing."""
    from launcher.errors import MirrorUnusable
    from launcher.mirrors.probe import Target, probe

    result = probe(Target(source.channel, source.id, source.url, source.probe_url, source.kind), timeout, proxy)
    if result.ok:
        return source
    if source.channel == "torch" and source.id == "custom":
        flat = Target("torch", "custom", source.url, source.url, "flat")
        if probe(flat, timeout, proxy).ok:
            return Source("torch", "custom", source.url, "flat", source.url, source.url, probe_url=source.url)
    zh, en = EXPECT[source.channel]
    raise MirrorUnusable(value=source.url, channel=source.channel, reason=result.error, expect_zh=zh, expect_en=en)
