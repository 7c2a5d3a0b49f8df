"""``release --target win-x64 --with-pack ID`` on another system: the generation environment, cross-installed.

An archive for Windows built on Linux (the way release archives are made)
cannot create a Windows venv or run the Windows Python.  So its
``env\\runtime`` takes the layout ComfyUI's portable build made familiar: a
copy of the embeddable Python (``Scripts\\``) beside its own
``Lib\\site-packages``, named by relative paths only
(:func:`bootstrap.portable.make_embedded_env`, as ``env\\launcher``), filled by
``uv pip install --target --python-platform`` with the target's wheels.  The
steps are the builder's: the pack's torch trio from the torch mirrors (PyPI
for their dependencies), then the runtime requirements from the PyPI mirrors
under constraints that pin the trio; each step falls back across its
channel's mirrors.  Markers are evaluated for the target, not for this
machine.  Nothing here can run the result: the stamp says so, and on the
target the doctor's environment probe is its first check.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bootstrap.builder.build import CONSTRAINTS, requirements_digest
from bootstrap.builder.install import installer_env, run_logged, sources_uv, uv_bin
from bootstrap.builder.state import write_stamp
from bootstrap.i18n import pick
from bootstrap.layout import Bundle, bundle_environ
from bootstrap.portable import make_embedded_env, move_scripts
from launcher._version import __version__

# uv's --python-platform for each target a generation environment can be cross-installed for.
UV_PLATFORMS = {"win-x64": "x86_64-pc-windows-msvc"}
RUNTIME_TXT = "yijian-runtime.txt"


def cross_install_pack(bundle: Bundle, root: Path, target: str, os_name: str, python_version: str, pack_id: str, *,
                       lang: str, say: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    """``root/env/runtime`` for ``pack_id`` on ``target``; returns its stamp.  Raises ReleaseFailed/YijianError."""
    from launcher import config
    from launcher.mirrors.environ import child_environ
    from launcher.mirrors.fallback import MirrorProblem, try_sources
    from launcher.mirrors.measure import ensure_measured
    from launcher.mirrors.plan import plan_for
    from launcher.mirrors.sources import Source
    from launcher.packs.catalog import load_packs
    from launcher.release_archive import ReleaseFailed

    packs = load_packs(bundle.packs_dir)
    pack = packs.require(pack_id)
    if os_name not in pack.os:
        raise ReleaseFailed(reason_zh=f"环境包 {pack.id} 不支持 {target}", reason_en=f"the pack {pack.id} is not for {target}",
                            fix_zh=f"选一个支持 {os_name} 的环境包（packs list）。",
                            fix_en=f"Choose a pack for {os_name} (packs list).")  # fmt: skip
    short = ".".join(python_version.split(".")[:2])
    if pack.python != short:
        raise ReleaseFailed(reason_zh=f"环境包 {pack.id} 需要 Python {pack.python}，便携包的 Python 是 {python_version}",
                            reason_en=f"the pack {pack.id} needs Python {pack.python}; the archive's Python is {python_version}",
                            fix_zh="选一个与 bootstrap/python-builds.toml 中 Python 版本相同的环境包。",
                            fix_en="Choose a pack with the Python of bootstrap/python-builds.toml.")  # fmt: skip
    uv = uv_bin()
    if uv is None:
        raise ReleaseFailed(reason_zh="没有 uv，无法为另一个系统安装生成环境", reason_en="uv is missing, and it installs for another system",
                            fix_zh="重新运行 start.sh，让启动器环境装好 uv。", fix_en="Run start.sh again so that the launcher environment has uv.")  # fmt: skip
    pins, requirements = pack.pins(os_name), packs.runtime_requirements(pack)
    cfg = config.load(bundle)
    ensure_measured(bundle, cfg, ("pypi", "torch"), cuda=pack.cuda, lang=lang, say=say)
    mirrors = plan_for(bundle, cfg, cuda=pack.cuda)
    pypi_sources, torch_sources = mirrors.sources["pypi"], mirrors.sources["torch"]
    if cfg.get_bool("network.offline") and not all(s.local for s in (pypi_sources[0], torch_sources[0])):
        from launcher.errors import OfflineMode

        raise OfflineMode(
            action_zh=f"下载环境包 {pack.id} 的 wheel", action_en=f"download the wheels of the pack {pack.id}"
        )
    child, _ = child_environ(mirrors, bundle_environ(bundle, dict(os.environ)))
    env_vars = installer_env(child)

    env = root / "env" / "runtime"
    make_embedded_env(root / "python", env, "..\\..\\..")
    site = env / "Lib" / "site-packages"
    constraints = env / CONSTRAINTS
    constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
    runtime_txt = env / RUNTIME_TXT
    runtime_txt.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    bundle.logs_dir.mkdir(parents=True, exist_ok=True)
    log = bundle.logs_dir / f"release-{target}-{pack.id}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    base = [str(uv), "pip", "install", "--no-config", "--target", str(site), "--python-platform", UV_PLATFORMS[target],
            "--python-version", python_version]  # fmt: skip

    def run(argv: list[str]) -> None:
        lines: list[str] = []
        if run_logged(argv, env_vars, log, lines.append) != 0:
            why = [ln for ln in lines if "error" in ln.lower() or "because" in ln.lower()] or lines or ["uv failed"]
            raise MirrorProblem(why[-1].strip()[:200])

    def torch_step(torch: Source) -> None:
        run([*base, *sources_uv(pypi_sources[0], torch), *pins])

    def runtime_step(pypi: Source) -> None:
        run([*base, *sources_uv(pypi, None), "--constraint", str(constraints), "--requirement", str(runtime_txt)])

    say(pick(lang, f"为 {target} 安装 {', '.join(pins)}（{UV_PLATFORMS[target]} 的 wheel）…",
             f"Installing {', '.join(pins)} for {target} ({UV_PLATFORMS[target]} wheels) ..."))  # fmt: skip
    try_sources(torch_sources, torch_step, bundle=bundle, lang=lang, say=say)
    say(pick(lang, f"为 {target} 安装运行依赖（{len(requirements)} 项）…",
             f"Installing the runtime requirements ({len(requirements)}) for {target} ..."))  # fmt: skip
    try_sources(pypi_sources, runtime_step, bundle=bundle, lang=lang, say=say)
    move_scripts(site, env / "Scripts", keep=())  # uv wrote this machine's console scripts: useless there
    shutil.rmtree(site / "__pycache__", ignore_errors=True)
    stamp = {"pack": pack.id, "pins": pins, "requirements_sha256": requirements_digest(pins, requirements),
             "python": python_version, "built": f"release {__version__}",
             "cross_installed": f"for {target} ({UV_PLATFORMS[target]}) by uv on another system; not run there yet: "
                                "the doctor's environment probe checks it on the target"}  # fmt: skip
    write_stamp(env, stamp)
    return stamp
