"""The per-architecture config folders single-file checkpoints load with: ``cache/configs/<arch>``.

The runtime loads a single ``.safetensors`` checkpoint offline, always with
``from_single_file(ckpt, config=cache/configs/<arch>)``.  Each of those folders
holds one diffusers pipeline's configs and tokenizer and no weights (about
1 MB); which repository and which files is ``models/architectures.toml``.
The launcher fetches the folders the library needs once, before it starts the
runtime:

* :func:`architectures_in_library` - the architectures of the single-file
  checkpoints present (so only those are fetched);
* :func:`missing_architectures` - which of them have no complete folder yet;
* :func:`ensure_configs` - fetch what is missing through the Hugging Face
  channel of the mirror plan, with the download engine.

A fetch resolves the revision to its commit on the first endpoint that
answers, downloads every file pinned to that commit (falling back across the
channel's endpoints per file, then ModelScope when the plan lists it), and
checks each against the size and git blob id (or LFS sha256) the endpoint
lists.  Files land in ``cache/configs/.<arch>.partial/``; the marker
``.complete`` (repo, revision, commit, files) is written last, and only then
is the folder renamed to ``<arch>``.  So an interrupted fetch never leaves a
folder that looks complete, and the next run reuses the files that verify.

Standard library plus requests (through the engine); no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bootstrap.atomic import write_atomic
from bootstrap.errors import ExitCode, YijianError
from bootstrap.i18n import pick
from bootstrap.layout import Bundle
from launcher.models.architecture import ARCHITECTURES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from launcher.config import Config
    from launcher.mirrors.plan import MirrorPlan
    from launcher.mirrors.sources import Source

__all__ = [
    "MARKER",
    "ArchConfigFetchFailed",
    "ArchConfigOffline",
    "ArchSpec",
    "architectures_in_library",
    "architectures_path",
    "config_folder",
    "configs_root",
    "ensure_configs",
    "load_architectures",
    "missing_architectures",
]

MARKER = ".complete"  # written last: a folder without it is not complete
PARTIAL_SUFFIX = ".partial"
MODELSCOPE_REVISION = "master"
METADATA_TIMEOUT = 10.0
CHANNEL = "huggingface"


# -- errors -----------------------------------------------------------------------------------------------------------


class ArchConfigOffline(YijianError):
    code = "ARCH_CONFIG_OFFLINE"
    exit_code = ExitCode.NETWORK
    zh = "离线模式已开启，无法下载 {arch} 架构的配置文件（约 1 MB，存放在 {folder}）；没有它们，这个架构的单文件模型无法加载。"
    en = (
        "Offline mode is on, so the config files of the {arch} architecture (about 1 MB, kept in {folder}) "
        "cannot be downloaded; without them its single-file models cannot load."
    )
    hint_zh = (
        "只需联网一次：运行 ./start.sh config set network.offline false 后重新启动；"
        "或者从另一个一键整合包把 cache/configs 下的同名文件夹复制过来。"
    )
    hint_en = (
        "Go online once: run ./start.sh config set network.offline false and start again; "
        "or copy the folders of the same name from another Yijian bundle's cache/configs."
    )


class ArchConfigFetchFailed(YijianError):
    code = "ARCH_CONFIG_FETCH_FAILED"
    exit_code = ExitCode.DOWNLOAD
    zh = "无法下载 {arch} 架构的配置文件 {file}（{repo}）：{listing}"
    en = "Could not download {file}, a config file of the {arch} architecture ({repo}): {listing}"
    hint_zh = (
        "已下载好的文件保留在 {partial}，重新运行会接着下载。检查网络和代理，"
        "或运行 ./start.sh mirrors test 后用 ./start.sh mirrors use huggingface … 换一个模型下载源。"
    )
    hint_en = (
        "The files already fetched are kept in {partial}; running again continues. Check the network and the "
        "proxy, or run ./start.sh mirrors test and pick another endpoint with ./start.sh mirrors use huggingface …"
    )


# -- what to fetch ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchSpec:
    """One architecture's config folder: where it comes from and which files it holds."""

    id: str
    repo: str
    revision: str
    files: tuple[str, ...]
    modelscope: str = ""  # the same repository on ModelScope, "" when there is none


def architectures_path(bundle: Bundle) -> Path:
    """The shipped list: ``models/architectures.toml`` beside the code."""
    return bundle.code / "models" / "architectures.toml"


def configs_root(bundle: Bundle) -> Path:
    return bundle.cache_dir / "configs"


def config_folder(bundle: Bundle, arch: str) -> Path:
    """``cache/configs/<arch>``: what the runtime passes as ``config=``."""
    return configs_root(bundle) / arch


def _partial_folder(final: Path) -> Path:
    return final.with_name(f".{final.name}{PARTIAL_SUFFIX}")


def _safe_relative(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path and p.name != MARKER


def load_architectures(path: Path) -> dict[str, ArchSpec]:
    """Parse ``architectures.toml``; a malformed file is a packaging bug (ValueError naming it)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    specs: dict[str, ArchSpec] = {}
    for i, raw in enumerate(data.get("architecture", [])):
        where = f"{path}: architecture #{i + 1}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: not a table")
        arch, repo, revision = raw.get("id"), raw.get("repo"), raw.get("revision", "main")
        files, modelscope = raw.get("files"), raw.get("modelscope", "")
        if arch not in ARCHITECTURES:
            raise ValueError(f"{where}: id must be one of {', '.join(ARCHITECTURES)}, not {arch!r}")
        if not isinstance(repo, str) or repo.count("/") != 1:
            raise ValueError(f"{where} ({arch}): repo must be namespace/name")
        if not isinstance(revision, str) or not revision:
            raise ValueError(f"{where} ({arch}): revision must be a non-empty string")
        if not isinstance(modelscope, str) or (modelscope and modelscope.count("/") != 1):
            raise ValueError(f"{where} ({arch}): modelscope must be namespace/name")
        if not isinstance(files, list) or not all(isinstance(f, str) and _safe_relative(f) for f in files):
            raise ValueError(f"{where} ({arch}): files must be a list of relative paths")
        if "model_index.json" not in files:
            raise ValueError(f"{where} ({arch}): files must include model_index.json")
        if arch in specs:
            raise ValueError(f"{where}: {arch} is listed twice")
        specs[arch] = ArchSpec(arch, repo, revision, tuple(dict.fromkeys(files)), modelscope)
    return specs


# -- state on disk ----------------------------------------------------------------------------------------------------


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete(folder: Path, spec: ArchSpec) -> bool:
    """Fetched in full for this spec: the marker names its repo and revision, and every file is there."""
    marker = _read_marker(folder)
    if marker is None or marker.get("repo") != spec.repo or marker.get("revision") != spec.revision:
        return False
    listed = marker.get("files")
    if not isinstance(listed, list) or not set(spec.files) <= set(listed):
        return False
    return all((folder / f).is_file() for f in spec.files)


def _usable(folder: Path) -> bool:
    """A folder the runtime can load with, though not (or no longer) what the spec asks for."""
    return (folder / "model_index.json").is_file()


def _specs_for(bundle: Bundle, archs: Iterable[str], specs: Mapping[str, ArchSpec] | None) -> list[ArchSpec]:
    known = specs if specs is not None else load_architectures(architectures_path(bundle))
    out: list[ArchSpec] = []
    for arch in dict.fromkeys(archs):
        if arch not in known:
            raise ValueError(f"no config folder is defined for architecture {arch!r}")
        out.append(known[arch])
    return out


def missing_architectures(
    bundle: Bundle, archs: Iterable[str], *, specs: Mapping[str, ArchSpec] | None = None
) -> list[str]:
    """Those of ``archs`` (in order, once each) without a complete, current config folder."""
    return [s.id for s in _specs_for(bundle, archs, specs) if not _complete(config_folder(bundle, s.id), s)]


def architectures_in_library(bundle: Bundle, extra_dirs: Sequence[str | Path] = ()) -> set[str]:
    """The architectures of the usable single-file checkpoints in the library (diffusers folders need none)."""
    from launcher.models.library import scan

    found: set[str] = set()
    for m in scan(bundle, extra_dirs, with_hashes=False):
        if m.folder != "checkpoint" or m.type != "checkpoint" or m.format == "diffusers":
            continue
        if any(p.code in ("corrupt", "unreadable") for p in m.problems):
            continue
        if m.architecture in ARCHITECTURES:
            found.add(m.architecture)
    return found


# -- where the bytes come from ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Expect:
    """What the endpoint lists for one file."""

    size: int | None
    blob_id: str | None  # git blob sha1 of a normal file
    sha256: str | None  # an LFS file's


@dataclass(frozen=True)
class _Listing:
    commit: str
    files: dict[str, _Expect]
    endpoint: str


@dataclass(frozen=True)
class _Origin:
    """One place to fetch files from: an HF endpoint pinned to a commit, or ModelScope."""

    label: str
    base: str  # the file's quoted path is appended
    mirror_id: str
    verified: bool  # files are checked against the listing (HF) or only for shape (ModelScope)
    headers: Mapping[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + quote(path)


class _Problem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hf_headers() -> dict[str, str]:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _listing(endpoint: str, spec: ArchSpec) -> _Listing:
    """The commit and file metadata of ``spec``'s revision, from one endpoint's API."""
    import requests

    from launcher.downloads.transfer import USER_AGENT
    from launcher.mirrors.fallback import problem_for_exception, problem_for_status

    url = f"{endpoint}/api/models/{spec.repo}/revision/{quote(spec.revision, safe='')}"
    headers = {"User-Agent": USER_AGENT, **_hf_headers()}
    try:
        resp = requests.get(url, params={"blobs": "true"}, headers=headers, timeout=METADATA_TIMEOUT)
    except requests.RequestException as exc:
        raise _Problem(problem_for_exception(exc) or "connection failed") from exc
    with resp:
        error_code = resp.headers.get("X-Error-Code", "")
        if error_code in ("RepoNotFound", "RevisionNotFound") or resp.status_code == 401:
            raise _Problem(f"HTTP {resp.status_code}: {spec.repo}@{spec.revision} not found (or needs a login)")
        problem = problem_for_status(resp.status_code)
        if problem is not None or resp.status_code != 200:
            raise _Problem(problem or f"HTTP {resp.status_code}")
        try:
            info = resp.json()
        except ValueError:
            raise _Problem("the answer is not Hugging Face API JSON") from None
    commit = info.get("sha") if isinstance(info, dict) else None
    siblings = info.get("siblings") if isinstance(info, dict) else None
    if not isinstance(commit, str) or not commit or not isinstance(siblings, list):
        raise _Problem("the answer is not Hugging Face API JSON")
    files: dict[str, _Expect] = {}
    for s in siblings:
        if not isinstance(s, dict) or not isinstance(s.get("rfilename"), str):
            continue
        lfs = s.get("lfs") if isinstance(s.get("lfs"), dict) else None
        size = (lfs or s).get("size")
        files[s["rfilename"]] = _Expect(
            size if isinstance(size, int) else None,
            None if lfs else (s.get("blobId") if isinstance(s.get("blobId"), str) else None),
            lfs.get("sha256") if lfs and isinstance(lfs.get("sha256"), str) else None,
        )
    absent = [f for f in spec.files if f not in files]
    if absent:
        raise _Problem(f"{spec.repo}@{spec.revision} has no {', '.join(absent)}")
    return _Listing(commit, files, endpoint)


def _origins(spec: ArchSpec, sources: Sequence[Source], lang: str) -> tuple[_Listing | None, list[_Origin], list[str]]:
    """The listing (from the first endpoint that answers), the places to fetch from in order, and the problems."""
    endpoints = [s for s in sources if s.kind == "hf"]
    problems: list[str] = []
    listing: _Listing | None = None
    for e in endpoints:
        try:
            listing = _listing(e.url.rstrip("/"), spec)
            break
        except _Problem as exc:
            problems.append(f"{e.name(lang)}: {exc.reason}")
    origins: list[_Origin] = []
    if listing is not None:
        origins = [
            _Origin(
                e.name(lang), f"{e.url.rstrip('/')}/{spec.repo}/resolve/{listing.commit}/", e.id, True, _hf_headers()
            )
            for e in endpoints
        ]
    modelscope = next((s for s in sources if s.kind == "modelscope"), None)
    if spec.modelscope and modelscope is not None:
        base = f"{modelscope.url.rstrip('/')}/models/{spec.modelscope}/resolve/{MODELSCOPE_REVISION}/"
        origins.append(_Origin(modelscope.name(lang), base, modelscope.id, False))
    return listing, origins, problems


# -- checking a file ----------------------------------------------------------------------------------------------------


def git_blob_sha1(data: bytes) -> str:
    """The git object id of ``data``: what the Hugging Face API calls a normal file's blobId."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _validator(first: bytes) -> str | None:
    """The engine's first-bytes check, minus "JSON error": these files are JSON."""
    from launcher.models.safetensors_header import sniff_wrong_content

    found = sniff_wrong_content(first)
    return None if found == "JSON error" else found


def _shape_problem(path: str, data: bytes) -> str | None:
    """Why ``data`` cannot be the config file ``path`` (an error answer, not text), or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if path.endswith(".json"):
        try:
            value = json.loads(text)
        except ValueError:
            return "not valid JSON"
        if not isinstance(value, dict):
            return "not a JSON object"
        if ("error" in value and len(value) <= 3) or value.get("Success") is False:
            return "a JSON error answer"
        return None
    if not text.strip() or "\0" in text:
        return "empty or binary"
    return None


def _file_problem(path: str, dest: Path, expect: _Expect | None) -> str | None:
    data = dest.read_bytes()
    if expect is not None:
        if expect.size is not None and len(data) != expect.size:
            return f"{len(data)} bytes, the repository lists {expect.size}"
        if expect.blob_id and git_blob_sha1(data) != expect.blob_id:
            return "content differs from the repository's (git blob id)"
        if expect.sha256 and hashlib.sha256(data).hexdigest() != expect.sha256:
            return "content differs from the repository's (sha256)"
    return _shape_problem(path, data)


# -- fetching ---------------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    bundle: Bundle
    spec: ArchSpec
    lang: str
    say: Callable[[str], None]
    stop: threading.Event | None
    listing: _Listing | None
    order: list[_Origin]  # a source that failed moves to the end for the files after
    used: dict[str, str] = field(default_factory=dict)  # file -> origin label

    def t(self, zh: str, en: str) -> str:
        return pick(self.lang, zh, en)


def _fetch_file(run: _Run, path: str, partial: Path) -> None:
    from launcher.downloads.engine import fetch
    from launcher.mirrors import ranking
    from launcher.mirrors.fallback import MirrorProblem

    dest = partial / path
    expect = run.listing.files.get(path) if run.listing is not None else None
    if dest.is_file() and expect is not None and _file_problem(path, dest, expect) is None:
        run.used[path] = "reused"  # verified against the current listing: fetched by an interrupted run
        return
    dest.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []
    for origin in list(run.order):
        check = expect if origin.verified else None
        try:
            fetch(origin.url(path), dest, sha256=check.sha256 if check else None, size=check.size if check else None,
                  headers=origin.headers, connections=1, stop=run.stop, validator=_validator)  # fmt: skip
            problem = _file_problem(path, dest, check)
            if problem is not None:
                dest.unlink(missing_ok=True)
                raise MirrorProblem(problem)
        except MirrorProblem as exc:
            tried.append(f"{origin.label}: {exc.reason}")
            ranking.record_failure(run.bundle, CHANNEL, origin.mirror_id, exc.reason)
            run.order.remove(origin)
            run.order.append(origin)
            rest = [o for o in run.order if o is not origin]
            if rest and len(tried) < len(run.order):
                nxt = rest[0]
                run.say(run.t(f"{origin.label} 下载 {path} 失败（{exc.reason}），改用 {nxt.label}",
                              f"{origin.label} failed on {path} ({exc.reason}); trying {nxt.label}"))  # fmt: skip
            continue
        run.used[path] = origin.label
        return
    raise ArchConfigFetchFailed(arch=run.spec.id, file=path, repo=run.spec.repo, listing="; ".join(tried) or "-",
                                partial=str(partial))  # fmt: skip


def _write_marker(partial: Path, run: _Run) -> None:
    marker = {
        "architecture": run.spec.id,
        "repo": run.spec.repo,
        "revision": run.spec.revision,
        "commit": run.listing.commit if run.listing is not None else "",
        "modelscope": run.spec.modelscope,
        "files": list(run.spec.files),
        "sources": run.used,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_atomic(partial / MARKER, json.dumps(marker, ensure_ascii=False, indent=1))


def _tidy(partial: Path, keep: Iterable[str]) -> None:
    """Remove what is not one of ``keep`` (the engine's leftovers of an interrupted run)."""
    wanted = {partial / k for k in keep}
    for p in sorted(partial.rglob("*"), key=lambda q: len(q.parts), reverse=True):
        if p.is_file() and p not in wanted:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()


def _swap_in(partial: Path, final: Path) -> None:
    """Rename the finished folder into place; an older folder there is moved aside first, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(partial, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fetch_architecture(bundle: Bundle, spec: ArchSpec, plan: MirrorPlan, *, lang: str,
                        say: Callable[[str], None], stop: threading.Event | None) -> None:  # fmt: skip
    from launcher.downloads.partfile import PartFile

    final = config_folder(bundle, spec.id)
    partial = _partial_folder(final)
    lock = PartFile(final)  # cache/configs/<arch>.part.lock: one fetch per architecture at a time
    lock.acquire()
    try:
        if _complete(final, spec):  # another process finished it while we were starting
            return
        listing, origins, problems = _origins(spec, plan.sources.get(CHANNEL, []), lang)
        if not origins:
            raise ArchConfigFetchFailed(arch=spec.id, file="model_index.json", repo=f"{spec.repo}@{spec.revision}",
                                        listing="; ".join(problems) or pick(lang, "没有可用的下载源", "no endpoint"),
                                        partial=str(partial))  # fmt: skip
        run = _Run(bundle, spec, lang, say, stop, listing, list(origins))
        first = origins[0].label
        say(pick(lang, f"正在通过 {first} 下载 {spec.id} 架构的配置文件（{len(spec.files)} 个小文件，只需一次）……",
                 f"Fetching the {spec.id} config files through {first} ({len(spec.files)} small files, once)…"))  # fmt: skip
        if listing is None:
            say(pick(lang, f"Hugging Face 各端点都没有应答（{'; '.join(problems)}），改用 {first}",
                     f"No Hugging Face endpoint answered ({'; '.join(problems)}); using {first}"))  # fmt: skip
        partial.mkdir(parents=True, exist_ok=True)
        (partial / MARKER).unlink(missing_ok=True)
        for path in spec.files:
            _fetch_file(run, path, partial)
        _tidy(partial, spec.files)
        _write_marker(partial, run)
        _swap_in(partial, final)
    finally:
        lock.release()


def ensure_configs(
    bundle: Bundle,
    archs: Iterable[str],
    *,
    cfg: Config | None = None,
    plan: MirrorPlan | None = None,
    specs: Mapping[str, ArchSpec] | None = None,
    lang: str = "en",
    say: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Path]:
    """Make sure each of ``archs`` has its config folder; return the folders, in the order asked.

    Nothing touches the network when every folder is complete.  Otherwise the
    mirror plan (``plan``, else built from ``cfg``, else from config.toml) gives
    the Hugging Face endpoints.  In offline mode a folder that is only out of
    date is used as it is; a missing one raises :class:`ArchConfigOffline`.
    When a fetch fails and an older folder is there, it is kept (said once);
    otherwise :class:`ArchConfigFetchFailed` names the file.  Also raised: the
    engine's errors (DiskFull, DownloadInterrupted), DownloadLocked when
    another process is fetching the same folder.
    """
    say = say or (lambda _: None)
    wanted = _specs_for(bundle, archs, specs)
    todo = [s for s in wanted if not _complete(config_folder(bundle, s.id), s)]
    if todo:
        if plan is None:
            from launcher.mirrors.plan import plan_for

            if cfg is None:
                from launcher import config

                cfg = config.load(bundle)
            plan = plan_for(bundle, cfg)
        if plan.network.offline:
            absent = [s.id for s in todo if not _usable(config_folder(bundle, s.id))]
            if absent:
                names = ", ".join(absent)
                raise ArchConfigOffline(arch=names, folder=str(configs_root(bundle)))
            todo = []  # out of date but usable: keep them while offline
        for spec in todo:
            try:
                _fetch_architecture(bundle, spec, plan, lang=lang, say=say, stop=stop)
            except ArchConfigFetchFailed as exc:
                if not _usable(config_folder(bundle, spec.id)):
                    raise
                say(pick(lang, f"{spec.id} 的配置文件没能更新（{exc.message('zh')}），继续使用已有的版本。",
                         f"The {spec.id} config files could not be updated ({exc.message('en')}); "
                         "using the ones already there."))  # fmt: skip
    return [config_folder(bundle, s.id) for s in wanted]
