"""The one place that turns mirror choices into a child process's environment.

pip, uv, huggingface_hub and the runtime all learn where to fetch from
through environment variables.  :func:`child_environ` sets exactly those,
and removes every ``PIP_*``/``UV_*`` variable and config file the user may
have, so their own pip.conf never leaks into the bundle's installs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from bootstrap.i18n import Text
from launcher.mirrors.plan import MirrorPlan
from launcher.mirrors.sources import Source

LOOPBACK = ("localhost", "127.0.0.1", "::1")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
OURS = ("HF_ENDPOINT", "HF_HUB_DISABLE_XET", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _no_proxy(existing: str) -> str:
    items = [i.strip() for i in existing.split(",") if i.strip()]
    return ",".join(dict.fromkeys([*items, *LOOPBACK]))


def child_environ(plan: MirrorPlan, base: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[Text]]:
    """``base`` (default: os.environ) with the plan applied; plus warnings to show."""
    src = dict(os.environ if base is None else base)
    env = {k: v for k, v in src.items() if not k.startswith(("PIP_", "UV_")) and k not in OURS}
    warnings: list[Text] = []
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    find_links: list[str] = []
    pip_extra: list[str] = []
    uv_index: list[str] = []
    trusted: list[str] = []

    def http_warning(s: Source) -> None:
        host = urlsplit(s.url).hostname or s.url
        trusted.append(host)
        warnings.append(Text(
            f"镜像 {s.url} 使用未加密的 http://，下载内容可能被篡改；能用 https:// 时请改用。",
            f"The mirror {s.url} uses unencrypted http://; what it serves could be tampered with. Use https:// if it offers it.",
        ))  # fmt: skip

    pypi = plan.first("pypi")
    if pypi is not None:
        if pypi.local:
            env["PIP_NO_INDEX"] = env["UV_NO_INDEX"] = "1"
            find_links.append(pypi.url)
        else:
            env["PIP_INDEX_URL"] = env["UV_DEFAULT_INDEX"] = pypi.url
            if pypi.url.startswith("http://"):
                http_warning(pypi)
    torch = plan.first("torch") if plan.cuda else None
    if torch is not None:
        if torch.kind in ("flat", "local"):
            find_links.append(torch.url)
        else:
            pip_extra.append(torch.url)
            uv_index.append(f"pytorch={torch.url}")
            if torch.url.startswith("http://"):
                http_warning(torch)
    if find_links:
        env["PIP_FIND_LINKS"] = " ".join(find_links)
        env["UV_FIND_LINKS"] = ",".join(find_links)
    if pip_extra:
        env["PIP_EXTRA_INDEX_URL"] = " ".join(pip_extra)
    if uv_index:
        env["UV_INDEX"] = " ".join(uv_index)
    if trusted:
        env["PIP_TRUSTED_HOST"] = " ".join(dict.fromkeys(trusted))
    python = plan.first("python")
    if python is not None and python.kind == "pbs":
        env["UV_PYTHON_INSTALL_MIRROR"] = python.url
    hf = plan.first("huggingface")
    if hf is not None and hf.kind == "hf":
        env["HF_ENDPOINT"] = hf.url.rstrip("/")
        if not hf.official:
            # Xet transfers go straight to Hugging Face's storage, past the mirror.
            env["HF_HUB_DISABLE_XET"] = "1"
    if plan.network.proxy:
        for var in PROXY_VARS:
            env[var] = env[var.lower()] = plan.network.proxy
    env["NO_PROXY"] = env["no_proxy"] = _no_proxy(src.get("NO_PROXY") or src.get("no_proxy") or "")
    if plan.network.offline:
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "UV_OFFLINE": "1", "PIP_NO_INDEX": "1"})
    return env, warnings


def changed(env: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str | None]:
    """What :func:`child_environ` set or removed, for ``mirrors env``."""
    out: dict[str, str | None] = {k: v for k, v in env.items() if base.get(k) != v}
    out.update({k: None for k in base if k not in env})
    return dict(sorted(out.items()))
