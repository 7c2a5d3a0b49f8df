"""A1111 routes whose feature Yijian does not have yet: they exist and answer 501, naming the feature.

Interrogate (CLIP/DeepBooru captions) and training (embeddings,
hypernetworks) come with later issues (Extras' face restoration too, see
:mod:`runtime.api.extras`).  Until then a client that asks for them gets A1111's error body
with status 501 and the missing feature in zh/en, never a silent success.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runtime.api.context import ApiContext
from runtime.errors import FeatureNotAvailable

FEATURES: dict[str, tuple[str, str]] = {
    "/interrogate": ("interrogate (CLIP / DeepBooru captions)", "反推提示词（CLIP / DeepBooru）"),
    "/create/embedding": ("creating embeddings (training)", "创建嵌入（训练）"),
    "/create/hypernetwork": ("creating hypernetworks (training)", "创建超网络（训练）"),
    "/train/embedding": ("training embeddings", "训练嵌入"),
    "/train/hypernetwork": ("training hypernetworks", "训练超网络"),
}


def router(ctx: ApiContext) -> APIRouter:
    r = APIRouter()
    for path, (en, zh) in FEATURES.items():

        def refuse(body: dict[str, Any] | None = None, en: str = en, zh: str = zh) -> None:
            raise FeatureNotAvailable(feature=en, feature_zh=zh)

        r.add_api_route(path, refuse, methods=["POST"], name=path.strip("/").replace("/", "_").replace("-", "_"))
    return r
