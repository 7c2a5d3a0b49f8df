"""Building the launcher's own environment, ``env/launcher`` (stage 0's slow path).

The new environment is built beside the old one and swapped in only after
the install succeeded, so an interrupted first start never leaves a
half-built environment in use.  pip gets the index stage 0 chose
(:mod:`bootstrap.index_choice`) and nothing from the user's pip settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from bootstrap import proc
from bootstrap.credentials import installer_credentials
from bootstrap.errors import BundleNotWritable, LauncherEnvError
from bootstrap.i18n import pick
from bootstrap.index_choice import (
    Index,
    StageConfig,
    cached_results,
    catalog_indexes,
    explicit_index,
    rank,
)
from bootstrap.layout import Bundle, bundle_environ, env_python
from bootstrap.portable import (
    embedded_code_path,
    is_embeddable,
    make_embedded_env,
    move_scripts,
    pip_wheel,
    relink_venv,
)
from bootstrap.redact import redact, redact_argv, url_password
from bootstrap.stage0 import STAMP, launcher_env_ready, requirements_digest

MAX_ATTEMPTS = 3
MAX_BROKEN = 40  # tries of one index that each broke off at another wheel (the launcher lock pins 38 packages)


# msvcrt.locking's modes (the module exists only on Windows).
LK_UNLCK, LK_LOCK = 0, 1
Locking = Callable[[int, int, int], None]


def lock_byte_zero(fh: IO[bytes], locking: Locking, wait: Callable[[float], None] = time.sleep) -> None:
    """Windows: lock the first byte of ``fh``, waiting for as long as another start holds it.

    ``msvcrt.locking`` locks from the current position, and a file opened for
    appending starts at its end: every start must lock the same byte, so seek
    to 0 first.  LK_LOCK itself gives up after 10 s with OSError: wait again.
    """
    while True:
        fh.seek(0)
        try:
            locking(fh.fileno(), LK_LOCK, 1)
            return
        except OSError:
            wait(0.5)


def unlock_byte_zero(fh: IO[bytes], locking: Locking) -> None:
    """Windows: unlock what :func:`lock_byte_zero` locked (before the close, as msvcrt asks)."""
    fh.seek(0)
    with contextlib.suppress(OSError):
        locking(fh.fileno(), LK_UNLCK, 1)


@contextlib.contextmanager
def exclusive(path: Path, platform: str = sys.platform, locking: Locking | None = None) -> Iterator[None]:
    """One first start at a time per bundle (another start waits here).

    The lock file is never written to nor deleted (deleting an open file fails
    on Windows); only the lock on it matters.  ``locking`` stands in for
    ``msvcrt.locking`` in tests.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        if platform == "win32":
            if locking is None:
                import msvcrt

                locking = msvcrt.locking  # type: ignore[attr-defined,unused-ignore]  # Windows-only module
            lock_byte_zero(fh, locking)
            try:
                yield
            finally:
                unlock_byte_zero(fh, locking)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _child_env(bundle: Bundle) -> dict[str, str]:
    """The user's pip/uv settings never reach our installs, and no cache lands in HOME."""
    env = bundle_environ(bundle, {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "PYTHON"))})
    env.pop("PYTHONPATH", None)
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def proxy_environ(proxy: str) -> dict[str, str]:
    """A proxy with a password reaches pip through the environment, never its command line (``ps`` shows that)."""
    if not proxy or url_password(proxy) is None:
        return {}
    return {name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}


def candidate_indexes(bundle: Bundle, cfg: StageConfig, lang: str) -> list[Index]:
    """The indexes to try, in order, saying once why the order is what it is."""
    chosen = explicit_index(cfg.pypi, bundle)
    catalog = catalog_indexes(bundle)
    if chosen is not None and chosen.local:
        return [chosen]
    pool = ([chosen] if chosen else []) + [c for c in catalog if not chosen or c.url != chosen.url]
    # A fresh measurement by `mirrors test` saves probing again; a custom URL was never measured.
    cached = cached_results(bundle, pool) if chosen is None or chosen.id != "custom" else None
    results = cached or rank(pool, proxy=cfg.proxy)
    ok = [r.index for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    if chosen is not None and ok and ok[0].url != chosen.url:
        reason = next((r.error for r in failed if r.index.url == chosen.url), "slower")
        if any(r.index.url == chosen.url for r in failed):
            say(
                pick(
                    lang,
                    f"所选的 PyPI 镜像 {chosen.name('zh')} 不可用（{reason}），改用 {ok[0].name('zh')}：{ok[0].url}",
                    f"The chosen PyPI mirror {chosen.name('en')} is unavailable ({reason}); "
                    f"using {ok[0].name('en')} instead: {ok[0].url}",
                )
            )
        else:
            ok.remove(chosen)
            ok.insert(0, chosen)
    elif chosen is None and ok and ok[0].official and failed:
        names = ", ".join(r.index.id for r in failed)
        reason = failed[0].error
        say(
            pick(
                lang,
                f"国内镜像均无法连接（{names}：{reason}），改用官方源 {ok[0].url}",
                f"No Chinese mirror is reachable ({names}: {reason}); falling back to the official index {ok[0].url}",
            )
        )
    if not ok:
        # Nothing answered the probe; still try the choice and the official index, then the mirrors that only
        # timed out (slow on a busy machine or line, not refused: the chaos soak saw every probe time out at once).
        slow = [r.index for r in results if r.error == "timed out" and not r.index.official]
        out: list[Index] = []
        for index in ([chosen] if chosen else []) + [c for c in catalog if c.official] + slow:
            if index.url not in {i.url for i in out}:
                out.append(index)
        return out
    return ok


def pip_argv(python: Path, index: Index, bundle: Bundle, proxy: str, *, runner: list[str] | None = None,
             target: Path | None = None) -> list[str]:  # fmt: skip
    """pip's command line; ``runner``/``target`` install with another pip into a folder (the embeddable Python)."""
    argv = [
        *(runner or [str(python), "-m", "pip"]), "install",
        "--isolated", "--disable-pip-version-check", "--no-input",
        "--cache-dir", str(bundle.cache_dir / "pip"),
        "--timeout", "20", "--retries", "2",
        "--progress-bar", "off",
    ]  # fmt: skip
    if index.local:
        argv += ["--no-index", "--find-links", index.url]
    else:
        argv += ["--index-url", index.url + "/"]
        if index.url.startswith("http://"):
            host = index.url.split("/")[2].split(":")[0]
            argv += ["--trusted-host", host]
    if proxy and url_password(proxy) is None:  # a proxy with a password goes by the environment (proxy_environ)
        argv += ["--proxy", proxy]
    if target is not None:
        # pip itself too: the embeddable Python has none, and the environment's pip is the builder's fallback.
        return argv + ["--target", str(target), "-r", str(bundle.launcher_requirements), "pip"]
    return argv + ["-r", str(bundle.launcher_requirements)]


def embeddable_base(bundle: Bundle) -> Path | None:
    """The Windows embeddable Python to copy into env/launcher, when that is what runs stage 0."""
    for folder in (bundle.python_dir, Path(sys.executable).parent):
        if is_embeddable(folder) and (folder / "python.exe").exists():
            return folder
    return None


def _embedded_pip(index: Index, bundle: Bundle, proxy: str) -> list[str]:
    """How to run pip from the embeddable Python: its own pip, else one fetched from the index as a wheel."""
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    wheel = pip_wheel(index.url, index.local, bundle.cache_dir / "pip-bootstrap", proxy)
    return [sys.executable, str(wheel / "pip")]


def _run_logged(argv: list[str], log: Path, env: dict[str, str], show_progress: bool) -> int:
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n$ {redact_argv(argv)}\n")
        fh.flush()
        with installer_credentials(argv, env) as (run_argv, run_env):  # index passwords by a private netrc
            child = proc.start(run_argv, env=run_env)
            assert child.stdout is not None
            for line in child.stdout:
                fh.write(redact(line))
                if show_progress and line.startswith(("Collecting", "Downloading", "Installing")):
                    text = line.strip()[:70]
                    sys.stderr.write("\r  " + text.ljust(72))
                    sys.stderr.flush()
            code = child.wait()
    if show_progress:
        sys.stderr.write("\r" + " " * 76 + "\r")
        sys.stderr.flush()
    return code


# pip's words for a download cut off mid-file (urllib3/http.client), as opposed to a refused or unknown index.  A
# body that just ends early (no length sent) reaches pip whole-looking and fails the lock file's hashes instead.
_BROKE_OFF = re.compile(r"IncompleteRead|Connection broken|ProtocolError|ChunkedEncodingError|EOF occurred in "
                        r"violation of protocol|incomplete chunked read|Connection reset by peer|"
                        r"DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE")  # fmt: skip


def broke_off(output: str) -> bool:
    """Whether an installer's output shows a download that broke off mid-file (worth one more try)."""
    return bool(_BROKE_OFF.search(output))


# pip's hash-mismatch block names the wheel: "    anyio==4.16.0 from URL#sha256=... (from -r ...)"
_HASH_MISMATCH_WHEEL = re.compile(r"^\s+\S+==\S+ from (\S+?)(?:#\S*)? ", re.M)
_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)", re.M)


def broken_wheel(output: str) -> str | None:
    """The wheel whose download broke off in pip's output (its URL), or None if pip did not say."""
    found = _HASH_MISMATCH_WHEEL.findall(output) or _DOWNLOADING.findall(output)
    return found[-1] if found else None


def _since(log: Path, offset: int) -> str:
    try:
        with open(log, encoding="utf-8", errors="replace") as fh:
            fh.seek(offset)
            return fh.read()
    except OSError:
        return ""


def _tail(log: Path, n: int = 10) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def swap_in(staging: Path, env_dir: Path) -> None:
    """Put the checked ``staging`` environment where ``env_dir`` is: two renames, the old one deleted last."""
    old = env_dir.with_name(env_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if env_dir.exists():
        env_dir.rename(old)
    staging.rename(env_dir)
    shutil.rmtree(old, ignore_errors=True)


def build_launcher_env(bundle: Bundle, cfg: StageConfig, lang: str) -> None:
    """Create env/launcher from scratch, atomically."""
    target = bundle.launcher_env
    staging = target.with_name(target.name + ".new")
    log = bundle.logs_dir / f"bootstrap-{time.strftime('%Y%m%d-%H%M%S')}.log"
    show = sys.stderr.isatty()
    start = time.monotonic()
    say(pick(lang, "首次启动（或启动器已更新）：正在准备启动器环境 env/launcher …",
              "First start (or the launcher was updated): preparing the launcher environment env/launcher ..."))  # fmt: skip
    shutil.rmtree(staging, ignore_errors=True)
    env = {**_child_env(bundle), **proxy_environ(cfg.proxy)}
    base = embeddable_base(bundle)
    if base is not None:  # Windows embeddable Python: no venv module; a self-contained copy instead
        try:
            make_embedded_env(base, staging, embedded_code_path(target, bundle.code))
            code = 0
        except OSError as exc:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"\ncopying the embeddable Python {base} failed: {exc}\n")
            code = 1
    else:
        code = _run_logged([sys.executable, "-m", "venv", str(staging)], log, env, False)
        if code == 0 and os.name != "nt":
            relink_venv(staging, bundle.root)  # made from the bundle's own python/: keep working after a move
    if code != 0 or not env_python(staging).exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise LauncherEnvError(
            pick(lang, f"无法用 {sys.executable} 创建虚拟环境（缺少 venv/ensurepip 模块？在 Debian/Ubuntu 上请安装 python3-venv）",
                 f"{sys.executable} cannot create a virtual environment (no venv/ensurepip? "
                 "on Debian/Ubuntu install python3-venv)"),
            tried="-", log=str(log),
        )  # fmt: skip
    tried: list[str] = []
    attempts = candidate_indexes(bundle, cfg, lang)[:MAX_ATTEMPTS]
    broke: dict[str, set[str | None]] = {}  # per index: the wheels whose download broke off there
    position = 0
    while position < len(attempts):  # grows when a download broke off mid-file (below)
        index = attempts[position]
        position += 1
        tried.append(index.url)
        if len(tried) > 1:
            say(
                pick(
                    lang, f"改用 {index.name('zh')} 重试：{index.url}", f"Retrying with {index.name('en')}: {index.url}"
                )
            )
        if base is None:
            argv = pip_argv(env_python(staging), index, bundle, cfg.proxy)
        else:
            try:
                runner = _embedded_pip(index, bundle, cfg.proxy)
            except (OSError, ValueError) as exc:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(redact(f"\nno pip from {index.url}: {exc}\n"))
                continue
            site = staging / "Lib" / "site-packages"
            argv = pip_argv(env_python(staging), index, bundle, cfg.proxy, runner=runner, target=site)
        before = log.stat().st_size if log.exists() else 0
        code = _run_logged(argv, log, env, show)
        if code == 0:
            if base is not None:
                move_scripts(staging / "Lib" / "site-packages", staging / "Scripts")
            break
        output = _since(log, before)
        if broke_off(output):
            # pip does not resume a wheel whose connection dropped mid-file, and stops at the first one; the same
            # index again fetches only the wheels not finished yet (the finished ones are in cache/pip).  Again while
            # each try breaks off at another wheel (it got further); the same wheel twice: the next index.
            seen = broke.setdefault(index.url, set())
            wheel = broken_wheel(output)
            if wheel not in seen and len(seen) < MAX_BROKEN:
                seen.add(wheel)
                attempts.insert(position, index)
    else:
        shutil.rmtree(staging, ignore_errors=True)
        detail = _tail(log)
        if detail:
            say(detail)
        raise LauncherEnvError(
            pick(lang, "安装启动器依赖失败", "installing the launcher's packages failed"),
            tried=", ".join(tried) or "-", log=str(log),
        )  # fmt: skip
    stamp = {
        "requirements_sha256": requirements_digest(bundle),
        "python": sys.executable,
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "index": tried[-1],
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (staging / STAMP).write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    swap_in(staging, target)
    say(pick(lang, f"启动器环境已就绪（用时 {time.monotonic() - start:.0f} 秒）。",
              f"Launcher environment ready ({time.monotonic() - start:.0f} s)."))  # fmt: skip


def prepare_launcher_env(bundle: Bundle, cfg: StageConfig, lang: str) -> Path:
    """Build the launcher environment (once, under a lock); return its interpreter."""
    try:
        bundle.ensure_dirs()
    except OSError as exc:
        raise BundleNotWritable(exc.strerror or str(exc), path=str(bundle.root)) from exc
    with exclusive(bundle.env_dir / ".launcher.lock"):
        if not launcher_env_ready(bundle):  # another start may have built it meanwhile
            build_launcher_env(bundle, cfg, lang)
    return env_python(bundle.launcher_env)
