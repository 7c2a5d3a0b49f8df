"""Civitai: from a link to the one file to download, its folder, hash and metadata.

Everything goes through the ``civitai`` channel's endpoint (``mirrors use
civitai URL``), whatever Civitai domain the pasted link named:

* ``GET {endpoint}/api/v1/model-versions/{id}`` (or ``/api/v1/models/{id}``
  for the newest version of a model) gives the version's files, each with
  its SHA256, type and ``metadata`` (``fp``: fp16/fp32, ``size``:
  pruned/full, ``format``), the model's type, the version's ``baseModel``,
  ``trainedWords`` and ``images``;
* the file: the primary one, or the one ``--file`` / ``--variant`` / an AIR's
  ``+FILE`` names;
* the download, ``{endpoint}/api/download/models/{id}?…``, answers 307 to a
  signed URL on another host that expires after about a day.  The engine
  follows it at every start, so a run after a crash or ``kill -9`` gets a
  fresh URL and continues the same ``.part`` (the journal is keyed by the
  download link and the SHA256, not by the signed URL).  The token goes to
  the endpoint only; the signed host never sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from launcher.downloads import DownloadSource
from launcher.downloads.sources import METADATA_TIMEOUT, Plan
from launcher.errors import LinkNotFound, ModelFileChoice, UnsupportedLink
from launcher.mirrors.fallback import MirrorProblem, problem_for_exception, problem_for_status
from launcher.models.links import CivitaiLink
from launcher.models.sidecar import Sidecar
from launcher.models.tokens import CIVITAI, bearer, token_needed

# Civitai's model types → Yijian's (the folder).  LyCORIS/LoCon/DoRA load from A1111's Lora folder since 1.5.
KIND_BY_TYPE = {
    "Checkpoint": "checkpoint", "LORA": "lora", "LoCon": "lora", "DoRA": "lora", "LyCORIS": "lora",
    "TextualInversion": "embedding", "VAE": "vae", "Upscaler": "upscaler", "Controlnet": "controlnet",
    "ControlNet": "controlnet", "Hypernetwork": "hypernetwork",
}  # fmt: skip
VARIANTS = ("fp16", "fp32", "pruned", "full")


@dataclass(frozen=True)
class Choice:
    """What the user said about which file: ``--file`` (a name, or part of one) and ``--variant``."""

    file: str = ""
    variant: str = ""


ANY_FILE = Choice()  # no --file, no --variant: the primary file


def _get(endpoint: str, path: str, token: str, what: str) -> dict[str, Any]:
    try:
        resp = requests.get(f"{endpoint}{path}", headers=bearer(token), timeout=METADATA_TIMEOUT)
    except requests.RequestException as exc:
        raise MirrorProblem(problem_for_exception(exc) or "connection failed") from exc
    if resp.status_code == 401:
        raise token_needed(CIVITAI, what, sent=bool(token))
    if resp.status_code in (404, 410):
        raise LinkNotFound(site="Civitai", what=what, status=f"HTTP {resp.status_code}")
    problem = problem_for_status(resp.status_code)
    if problem:
        raise MirrorProblem(problem)
    try:
        data = resp.json()
    except ValueError:
        raise MirrorProblem("not a Civitai API answer (wrong content)") from None
    if not isinstance(data, dict):
        raise MirrorProblem("not a Civitai API answer (wrong content)")
    return data


def version_info(link: CivitaiLink, endpoint: str, token: str) -> dict[str, Any]:
    """The model-version record the link means (a model link: its newest version, listed first)."""
    if link.version:
        return _get(endpoint, f"/api/v1/model-versions/{link.version}", token, f"model version {link.version}")
    model = _get(endpoint, f"/api/v1/models/{link.model}", token, f"model {link.model}")
    versions = model.get("modelVersions") or []
    if not versions:
        raise LinkNotFound(site="Civitai", what=f"model {link.model} (no versions)", status="-")
    newest = versions[0]
    # The model record's versions lack the model block the version route has: add it, so both look alike.
    newest.setdefault("model", {k: model.get(k) for k in ("name", "type", "nsfw", "poi") if k in model})
    newest.setdefault("modelId", model.get("id"))
    if newest.get("id") is not None:  # the version route's record is complete (images, hashes): prefer it
        try:
            return _get(endpoint, f"/api/v1/model-versions/{newest['id']}", token, f"model version {newest['id']}")
        except MirrorProblem:
            pass
    return dict(newest)


def _describe(f: dict[str, Any]) -> str:
    meta = f.get("metadata") or {}
    bits = [str(meta.get(k)) for k in ("fp", "size", "format") if meta.get(k)]
    return f"{f.get('name')} ({', '.join(bits)})" if bits else str(f.get("name"))


def pick_file(files: list[dict[str, Any]], choice: Choice, file_id: str, where: str) -> dict[str, Any]:
    """The file to download: by id, by ``--file``, by ``--variant``, else the primary one."""
    if not files:
        raise LinkNotFound(site="Civitai", what=f"{where} (no files)", status="-")
    listing = "; ".join(_describe(f) for f in files)
    if file_id:
        found = [f for f in files if str(f.get("id")) == file_id]
        if not found:
            raise ModelFileChoice(where=where, why_zh=f"没有编号为 {file_id} 的文件", why_en=f"none with id {file_id}",
                                  listing=listing)  # fmt: skip
        return found[0]
    pool = files
    if choice.file:
        want = choice.file.lower()
        pool = [f for f in files if str(f.get("name", "")).lower() == want] or \
            [f for f in files if want in str(f.get("name", "")).lower()]  # fmt: skip
        if not pool:
            raise ModelFileChoice(where=where, why_zh=f"没有名为「{choice.file}」的文件",
                                  why_en=f"none is named {choice.file!r}", listing=listing)  # fmt: skip
    if choice.variant:
        key = "fp" if choice.variant in ("fp16", "fp32") else "size"
        pool = [f for f in pool if str((f.get("metadata") or {}).get(key, "")).lower() == choice.variant]
        if not pool:
            raise ModelFileChoice(where=where, why_zh=f"没有 {choice.variant} 的文件",
                                  why_en=f"none is {choice.variant}", listing=listing)  # fmt: skip
    if len(pool) == 1:
        return pool[0]
    primary = [f for f in pool if f.get("primary")]
    if primary:
        return primary[0]
    models = [f for f in pool if f.get("type") in ("Model", "Pruned Model")]
    if len(models) == 1:
        return models[0]
    raise ModelFileChoice(where=where, why_zh="没有指明要哪一个", why_en="and none was named", listing=listing)


def kind_of(info: dict[str, Any], file: dict[str, Any]) -> str:
    """The Yijian type (folder) of the file: a version's VAE file is a VAE whatever the model's type."""
    if file.get("type") == "VAE":
        return "vae"
    model_type = str((info.get("model") or {}).get("type", ""))
    kind = KIND_BY_TYPE.get(model_type)
    if kind is None:
        raise UnsupportedLink(
            link=str(info.get("id")), why_zh=f"Civitai 上它的类型是 {model_type}，不是一键能用的模型文件（可用 --type 指定文件夹）",
            why_en=f"its Civitai type is {model_type}, not a model file Yijian uses (name a folder with --type)",
        )  # fmt: skip
    return kind


def preview_url(info: dict[str, Any]) -> str:
    """The first image of the version (a safe-for-work one when there is one), or ""."""
    images = [i for i in info.get("images") or [] if isinstance(i, dict) and i.get("url")
              and i.get("type", "image") == "image"]  # fmt: skip
    calm = [i for i in images if not i.get("nsfw") or i.get("nsfw") == "None" or (i.get("nsfwLevel") or 0) <= 1]
    chosen = (calm or images or [{}])[0]
    return str(chosen.get("url", ""))


def resolve_civitai(link: CivitaiLink, endpoint: str, token: str, choice: Choice = ANY_FILE,
                    kind: str | None = None) -> Plan:  # fmt: skip
    """The plan for a Civitai link, resolved through ``endpoint`` (the channel's choice)."""
    endpoint = endpoint.rstrip("/")
    info = version_info(link, endpoint, token)
    version = str(info.get("id") or link.version)
    model_name = str((info.get("model") or {}).get("name", ""))
    where = f"Civitai {model_name} {info.get('name', '')} ({version})".replace("  ", " ")
    file = pick_file(list(info.get("files") or []), choice, link.file_id, where)
    chosen_kind = kind or kind_of(info, file)
    sha = str((file.get("hashes") or {}).get("SHA256", "")).lower() or None
    # The file's own download link chooses among the version's files by its query (?type=…&format=…);
    # its path and query are kept, its host is the channel's endpoint.
    given = urlsplit(str(file.get("downloadUrl") or ""))
    path = given.path if given.path.startswith("/api/download/models/") else f"/api/download/models/{version}"
    url = f"{endpoint}{path}" + (f"?{given.query}" if given.query else "")
    source = DownloadSource(url, label="Civitai", headers=bearer(token), channel="civitai")
    name = str(file.get("name") or f"{version}.safetensors")
    words = tuple(str(w).strip() for w in info.get("trainedWords") or [] if str(w).strip())
    page = f"https://civitai.com/models/{info.get('modelId') or link.model}?modelVersionId={version}"
    sidecar = Sidecar(
        site="civitai", source_url=page, version=str(info.get("name", "")), model_name=model_name,
        base_model=str(info.get("baseModel", "")), trigger_words=words,
        description=str(info.get("description") or ""), preview_url=preview_url(info), civitai_info=info,
    )  # fmt: skip
    # sizeKB is rounded: not a size to verify against; the SHA256 is.
    return Plan([source], name, sha, None, chosen_kind, site=CIVITAI, sidecar=sidecar,
                token_sent=bool(token), label=where)  # fmt: skip
