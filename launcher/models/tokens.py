"""API tokens of the model sites: where each one is set, where to get one, and to whom it may be sent.

A token lives in config.toml (``downloads.civitai_token``, ``downloads.hf_token``,
``downloads.modelscope_token``; secret settings, masked by ``config show``
and remembered by the redaction layer) or in the site's usual environment
variable.  It is sent as ``Authorization: Bearer`` only in requests to its
own channel's endpoint: a source built for another host gets no header, and
the download engine drops the header when a redirect leaves that host
(:func:`launcher.downloads.redirects.headers_for`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Site:
    name: str  # how messages name it
    setting: str  # the config.toml key of its token
    env: tuple[str, ...]  # environment variables that may hold it, first wins
    page: str  # where a user creates a token

    def token(self, cfg: Any) -> str:
        """The token from config.toml, else from the environment; "" when none is set."""
        value = cfg.get_str(self.setting) if cfg is not None else ""
        return value or next((os.environ[v] for v in self.env if os.environ.get(v)), "")


CIVITAI = Site("Civitai", "downloads.civitai_token", ("CIVITAI_API_TOKEN", "CIVITAI_TOKEN"),
               "https://civitai.com/user/account")  # fmt: skip
HUGGINGFACE = Site("Hugging Face", "downloads.hf_token", ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
                   "https://huggingface.co/settings/tokens")  # fmt: skip
MODELSCOPE = Site("ModelScope", "downloads.modelscope_token", ("MODELSCOPE_API_TOKEN", "MODELSCOPE_TOKEN"),
                  "https://modelscope.cn/my/myaccesstoken")  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``, or no header."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def token_needed(site: Site, what: str, sent: bool) -> Exception:
    """The error for a 401: how to get a token, or that the one sent was refused."""
    from launcher.errors import TokenNeeded

    if sent:
        zh, en = "已发送的令牌被拒绝（可能已过期、被删除，或没有这个模型的权限）。", \
            "The token that was sent was refused (expired, deleted, or without access to this model)."  # fmt: skip
    else:
        zh, en = "还没有设置令牌。", "No token is set."
    env = site.env[0]
    return TokenNeeded(site=site.name, what=what, state_zh=zh, state_en=en, page=site.page, setting=site.setting,
                       env=env)  # fmt: skip
