"""Downloading one model into the library: what ``models download`` and one-click start share.

The target is a catalog name, a Hugging Face file, or a link of any kind
(:func:`launcher.models.resolve.resolve_link`); sources come from the
mirror plan: the Hugging Face endpoints in the user's order (their choice
first), then ModelScope for catalog entries that list a copy there; a copy
that is another file (another precision) is fetched under its own name and
sha256 only when every Hugging Face route failed.  The file lands in
the A1111 folder for its type, verified against the sha256 the catalog, the
target or the source gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.errors import UsageError
from bootstrap.layout import Bundle

Say = Callable[[str], None]


@dataclass(frozen=True)
class ModelRequest:
    target: str
    sha256: str | None = None
    folder: Path | None = None
    name: str | None = None
    kind: str | None = None
    connections: int | None = None
    file: str = ""  # which file of a repository or Civitai version (--file)
    variant: str = ""  # fp16 | fp32 | pruned | full (--variant, Civitai)


def fetch_model(bundle: Bundle, cfg: Any, request: ModelRequest, *, lang: str = "en", say: Say = lambda _: None,
                on_progress: Callable[[Any], None] | None = None, on_plan: Callable[[Any], None] | None = None,
                stop: threading.Event | None = None) -> Any:  # fmt: skip
    """Download ``request.target`` into the library; returns the engine's ``Result``.

    ``on_plan`` sees the resolved plan (file name, size) before the transfer starts.
    Setting ``stop`` (from another thread) pauses: the transfer ends with
    DownloadInterrupted, keeping ``NAME.part`` and its journal, and the next
    call for the same target resumes from them.
    Raises OfflineMode, DownloadFailed, ChecksumMismatch, TokenNeeded, LinkNotFound … from the error tree.
    """
    from launcher.downloads.sources import valid_sha256
    from launcher.errors import AllMirrorsFailed, DownloadFailed, OfflineMode, WrongContent
    from launcher.mirrors.measure import ensure_measured
    from launcher.models.civitai import VARIANTS, Choice

    def t(zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    if cfg.get_bool("network.offline"):
        raise OfflineMode(action_zh="下载模型", action_en="download models")
    target = request.target.strip()
    try:
        wanted = valid_sha256(request.sha256)
    except ValueError:
        raise UsageError(t(f"--sha256 应是 64 位十六进制数字，而不是 {request.sha256!r}",
                           f"--sha256 must be 64 hex digits, not {request.sha256!r}")) from None  # fmt: skip
    if request.connections is not None and not 1 <= request.connections <= 32:
        raise UsageError(t("--connections 应在 1 到 32 之间", "--connections must be between 1 and 32"))
    if request.variant and request.variant not in VARIANTS:
        raise UsageError(t(f"--variant 应是 {'、'.join(VARIANTS)} 之一", f"--variant must be one of {', '.join(VARIANTS)}"))
    from launcher.models.links import CatalogName, parse_link

    is_name = isinstance(parse_link(target), CatalogName)
    if is_name:  # a catalog name or a Hugging Face file: the fastest Hugging Face endpoint first
        ensure_measured(bundle, cfg, ("huggingface",), lang=lang, say=say)
    from launcher.downloads import download
    from launcher.mirrors.fallback import MirrorProblem
    from launcher.models.catalog import FOLDER_BY_TYPE, catalog_path, load_model_catalog
    from launcher.models.resolve import resolve_link

    routes = routes_for(bundle, cfg)
    catalog = load_model_catalog(catalog_path(bundle)) if is_name else None
    try:
        plan, carried = resolve_link(target, routes, catalog=catalog, choice=Choice(request.file, request.variant),
                                     kind=request.kind)  # fmt: skip
    except MirrorProblem as exc:
        raise DownloadFailed(url=target, reason=exc.reason) from exc
    if carried and wanted and carried != wanted:
        raise UsageError(t("网址中的 #sha256= 与 --sha256 不一致", "the URL's #sha256= differs from --sha256"))
    wanted = wanted or carried
    if wanted and plan.sha256 and wanted != plan.sha256:
        raise UsageError(t(f"--sha256 与来源公布的不一致（{plan.sha256}）",
                           f"--sha256 differs from the one the source publishes ({plan.sha256})"))  # fmt: skip
    kind = request.kind or plan.kind or "checkpoint"
    folder = request.folder or bundle.models_dir / FOLDER_BY_TYPE[kind]
    dest = folder / bare_name(request.name or plan.filename)
    if on_plan is not None:
        on_plan(plan)
    for note in plan.notes:
        say(note)
    if plan.sidecar is not None:
        from launcher.models.base_model import base_model_warning

        warning = base_model_warning(bundle, cfg, plan.sidecar.base_model, kind, lang)
        if warning:
            say(warning)
    connections = request.connections or cfg.get_int("downloads.connections")
    from launcher.models.safetensors_header import sniff_safetensors

    # A .safetensors name is checked against the format from the first bytes: an error page never gets the name.
    check = sniff_safetensors if dest.suffix.lower() == ".safetensors" else None
    try:
        result = download(plan.sources, dest, sha256=wanted or plan.sha256, size=plan.size, connections=connections,
                          on_progress=on_progress, say=say, lang=lang, bundle=bundle, stop=stop,
                          validator=check)  # fmt: skip
    except (AllMirrorsFailed, DownloadFailed, WrongContent) as exc:
        other = plan.fallback
        if other is None or request.name is not None or (carried or request.sha256):
            refused = refusal(exc, plan, target)  # the last word: no other file to try
            if refused is not None:
                raise refused from exc
            raise
        say(t(f"{exc.message('zh')}；改从 {other.sources[0].name()} 下载同一模型的另一个文件 {other.filename}",
              f"{exc.message('en')}; downloading {other.filename}, another file of the same model, from "
              f"{other.sources[0].name()}"))  # fmt: skip
        if on_plan is not None:
            on_plan(other)
        return download(other.sources, folder / other.filename, sha256=other.sha256, size=other.size,
                        connections=connections, on_progress=on_progress, say=say, lang=lang, bundle=bundle,
                        stop=stop)  # fmt: skip
    if plan.sidecar is not None:
        from launcher.models.sidecar import write_sidecars

        if request.kind is None and plan.kind is None and request.folder is None:
            result = settle_folder(result, bundle, lang, say)
        write_sidecars(result.path, plan.sidecar, result.sha256, lang=lang, say=say)
    return result


def settle_folder(result: Any, bundle: Bundle, lang: str, say: Say) -> Any:
    """A link that did not say its type (Hugging Face, ModelScope, a plain URL) was saved as a checkpoint;
    its header may say otherwise (a LoRA, a VAE …): then it moves to that folder, said in one line."""
    import os
    from dataclasses import replace

    from launcher.models.architecture import detect_header
    from launcher.models.catalog import FOLDER_BY_TYPE
    from launcher.models.safetensors_header import HeaderError, read_header

    path: Path = result.path
    if path.suffix.lower() != ".safetensors":
        return result
    try:
        kind = detect_header(read_header(path)).kind
    except (HeaderError, OSError):
        return result
    if kind in ("", "checkpoint") or kind not in FOLDER_BY_TYPE:
        return result
    target = bundle.models_dir / FOLDER_BY_TYPE[kind] / path.name
    if target.exists():
        say(f"{path.name}: " + (f"它是 {kind}，但 {target} 已存在，留在原处。" if lang == "zh"
                                 else f"it is a {kind}, but {target} exists; left where it is."))  # fmt: skip
        return result
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    say(f"{path.name}: " + (f"文件头表明它是 {kind}，已放进 {target.parent}" if lang == "zh"
                             else f"its header says it is a {kind}; moved into {target.parent}"))  # fmt: skip
    return replace(result, path=target)


def bare_name(name: str) -> str:
    """A file name a site gave (Civitai's API, Content-Disposition) as a bare name: never a path that leaves
    the folder, never a character Windows refuses."""
    import re

    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().strip(".")
    base = re.sub(r'[<>:"|?*\x00-\x1f]', "_", base)
    return base or "download.safetensors"


def refusal(exc: Exception, plan: Any, target: str) -> Exception | None:
    """A download the server refused for good: a 401 (the token) or a 404/410 (a dead link), never "resume"."""
    from launcher.downloads.transfer import StatusProblem
    from launcher.errors import LinkNotFound
    from launcher.models.tokens import token_needed

    cause = exc.__cause__
    if not isinstance(cause, StatusProblem):
        return None
    what = plan.label or target
    if cause.status == 401 and plan.site is not None:
        return token_needed(plan.site, what, sent=plan.token_sent)
    if cause.status in (404, 410):
        site = plan.site.name if plan.site is not None else plan.sources[0].name()
        return LinkNotFound(site=site, what=what, status=f"HTTP {cause.status}")
    return None


def routes_for(bundle: Bundle, cfg: Any) -> Any:
    """Every channel a link may be resolved through, in the user's order, with the sites' tokens."""
    from launcher.mirrors.plan import plan_for
    from launcher.models.resolve import Routes
    from launcher.models.tokens import CIVITAI, HUGGINGFACE, MODELSCOPE

    mirrors = plan_for(bundle, cfg)
    hf = mirrors.sources["huggingface"]
    return Routes(
        huggingface=[s for s in hf if s.kind == "hf"],
        catalog_modelscope=next((s for s in hf if s.kind == "modelscope"), None),
        civitai=mirrors.sources.get("civitai", []),
        modelscope=mirrors.sources.get("modelscope", []),
        tokens={"civitai": CIVITAI.token(cfg), "huggingface": HUGGINGFACE.token(cfg),
                "modelscope": MODELSCOPE.token(cfg)},
    )  # fmt: skip
