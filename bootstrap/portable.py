"""The Windows embeddable Python as the bundle's interpreter, and environments that move with the bundle.

python.org's embeddable zip is a whole CPython in one folder, relocatable
and with nothing to install, but it is made for embedding: its ``._pth``
file fixes ``sys.path`` (and makes it ignore ``PYTHONPATH``), it skips
``site`` (so no site-packages), and it has no ``venv`` or ``ensurepip``.
Yijian uses it this way:

* ``python/``: the zip unpacked, its ``._pth`` edited (:func:`edit_pth`) to
  add ``Lib\\site-packages``, the bundle root ``..`` (so ``-m bootstrap``
  imports without ``PYTHONPATH``) and ``import site``;
* ``env/launcher/``: not a venv (the embeddable Python cannot make one) but
  a copy of those few files in ``Scripts\\`` beside ``Lib\\site-packages``,
  with its own ``._pth`` naming that site-packages and the bundle root by
  relative paths (:func:`make_embedded_env`).  Nothing in it names an
  absolute path, so the folder can move.

Standard library only: stage 0 builds ``env/launcher`` this way on Windows,
and ``yijian release`` builds a win-x64 archive the same way from Linux.
"""

from __future__ import annotations

import hashlib
import ntpath
import os
import posixpath
import re
import shutil
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

SCRIPT_NAMES = ("uv", "uvx", "uvw")  # kept from a `pip install --target` bin/ folder; other scripts are dropped


def pth_file(folder: Path) -> Path | None:
    """The ``pythonXY._pth`` of an embeddable Python in ``folder``, if it is one."""
    found = sorted(folder.glob("python*._pth"))
    return found[0] if found else None


def is_embeddable(folder: Path) -> bool:
    return pth_file(folder) is not None


def pth_lines(original: str, extra: Sequence[str]) -> list[str]:
    """``original`` ._pth text with ``extra`` paths added and ``import site`` on.

    The zip of the standard library and ``.`` stay first; comments go.
    """
    paths: list[str] = []
    for raw in original.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "import site":
            continue
        paths.append(line)
    for p in extra:
        if p not in paths:
            paths.append(p)
    return [*paths, "import site"]


def edit_pth(pth: Path, extra: Sequence[str]) -> None:
    """Make an embeddable Python see ``extra`` (relative to the ._pth's folder) and run ``site``."""
    text = pth.read_bytes().decode("utf-8")
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = pth_lines(text, extra)
    pth.write_bytes((newline.join(lines) + newline).encode("utf-8"))


def embedded_code_path(env_dir: Path, code_root: Path) -> str:
    """How ``env/launcher/Scripts`` names the code root in its ._pth: relative when it can be."""
    scripts = env_dir / "Scripts"
    try:
        rel = posixpath.relpath(code_root.as_posix(), scripts.as_posix())
    except ValueError:  # another drive
        return str(code_root)
    return rel.replace("/", "\\")


def make_embedded_env(python_dir: Path, env_dir: Path, code_path: str) -> None:
    """``env_dir`` as a self-contained copy of the embeddable Python in ``python_dir`` (see the module doc).

    ``code_path`` is the code root as the new ._pth should name it (relative
    to ``env_dir/Scripts``, e.g. ``..\\..\\..``).
    """
    base_pth = pth_file(python_dir)
    if base_pth is None:
        raise FileNotFoundError(f"{python_dir} is not an embeddable Python (no python*._pth)")
    scripts = env_dir / "Scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (env_dir / "Lib" / "site-packages").mkdir(parents=True, exist_ok=True)
    for item in sorted(python_dir.iterdir()):
        if item.is_file():
            shutil.copy2(item, scripts / item.name)
    zips = [ln.strip() for ln in base_pth.read_text(encoding="utf-8").splitlines() if ln.strip().endswith(".zip")]
    lines = [*zips, ".", ntpath.join("..", "Lib", "site-packages"), code_path, "import site"]
    (scripts / base_pth.name).write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))


def relink_venv(env: Path, root: Path) -> list[str]:
    """Make a venv's ``bin/python*`` links relative when they point into ``root`` (the bundle's own python/).

    ``python -m venv`` writes absolute links; relative ones keep working when
    the bundle moves (start.sh then points pyvenv.cfg's ``home`` at the new
    place).  Links to an interpreter outside the bundle are left alone.
    """
    changed = []
    top = root.resolve()
    for link in sorted((env / "bin").glob("python*")):
        if not link.is_symlink():
            continue
        target = Path(os.readlink(link))
        if target.is_absolute() and target.resolve().is_relative_to(top):
            link.unlink()
            link.symlink_to(os.path.relpath(target.resolve(), link.parent.resolve()))
            changed.append(link.name)
    return changed


def move_scripts(site_packages: Path, scripts_dir: Path, keep: Iterable[str] = SCRIPT_NAMES) -> list[str]:
    """After ``pip install --target SITE``: move the binaries worth keeping from ``SITE/bin`` to ``scripts_dir``.

    pip writes every console script of a ``--target`` install into
    ``SITE/bin`` with the installing interpreter's path in it, so they are
    useless elsewhere; uv's binary (a file of its wheel) is what the
    launcher needs, found by ``uv.find_uv_bin()`` beside the environment.
    """
    src = site_packages / "bin"
    if not src.is_dir():
        return []
    wanted = set(keep)
    moved = []
    scripts_dir.mkdir(parents=True, exist_ok=True)
    for item in sorted(src.iterdir()):
        stem = item.name[:-4] if item.name.lower().endswith(".exe") else item.name
        if stem in wanted:
            shutil.move(str(item), str(scripts_dir / item.name))
            moved.append(item.name)
    shutil.rmtree(src)
    return moved


_PIP_LINK = re.compile(r'href="([^"]*?(pip-(\d+(?:\.\d+)*)-py3-none-any\.whl))(?:#sha256=([0-9a-fA-F]{64}))?"')


def newest_pip_link(page: str, base: str) -> tuple[str, str, str] | None:
    """(url, file name, sha256 or "") of the newest pip wheel a PEP 503 project page lists."""
    from urllib.parse import urljoin

    best: tuple[tuple[int, ...], str, str, str] | None = None
    for m in _PIP_LINK.finditer(page):
        version = tuple(int(x) for x in m.group(3).split("."))
        if best is None or version > best[0]:
            best = (version, urljoin(base, m.group(1)), m.group(2), (m.group(4) or "").lower())
    return None if best is None else best[1:]


def pip_wheel(index: str, local: bool, cache: Path, proxy: str = "", timeout: float = 30.0) -> Path:
    """A pip wheel from the index stage 0 chose (its sha256 checked), to run pip where there is none.

    ``python pip-X-py3-none-any.whl/pip install ...`` runs pip straight from
    its wheel: that is how the embeddable Python gets pip.
    """
    if local:
        wheels = sorted(Path(index).glob("pip-*-py3-none-any.whl"),
                        key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.name.split("-")[1])))  # fmt: skip
        if not wheels:
            raise FileNotFoundError(f"no pip wheel in {index}")
        return wheels[-1]
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})
    ]
    opener = urllib.request.build_opener(*handlers)
    page_url = index.rstrip("/") + "/pip/"
    req = urllib.request.Request(page_url, headers={"User-Agent": "yijian-bootstrap"})
    with opener.open(req, timeout=timeout) as resp:
        page = resp.read().decode("utf-8", "replace")
    found = newest_pip_link(page, page_url)
    if found is None:
        raise FileNotFoundError(f"{page_url} lists no pip wheel")
    url, name, sha256 = found
    dest = cache / name
    if dest.exists() and (not sha256 or hashlib.sha256(dest.read_bytes()).hexdigest() == sha256):
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(name + ".part")
    digest = hashlib.sha256()
    with opener.open(urllib.request.Request(url, headers={"User-Agent": "yijian-bootstrap"}), timeout=timeout) as resp:
        with open(part, "wb") as fh:
            while chunk := resp.read(1 << 16):
                digest.update(chunk)
                fh.write(chunk)
    if sha256 and digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise ValueError(f"{url}: sha256 {digest.hexdigest()}, the index says {sha256}")
    part.replace(dest)
    return dest
