"""Stage 0: make sure the launcher's own environment exists, then hand over.

Runs on whatever Python ``start.sh``/``start.bat`` found (3.10+), with the
standard library only.  The fast path (nothing to install) reads one stamp
file and hashes one small requirements file, then ``exec``s the launcher;
it imports as little as possible, because it runs on every start.  Building
the environment is :mod:`bootstrap.launcher_env`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from bootstrap.errors import ExitCode, LauncherEnvError, YijianError
from bootstrap.i18n import detect_language, lang_flag, pick
from bootstrap.layout import Bundle, bundle_environ, check_root_path, env_python

STAMP = "yijian-env.json"


def requirements_digest(bundle: Bundle) -> str:
    return hashlib.sha256(bundle.launcher_requirements.read_bytes()).hexdigest()


def _venv_home_ok(env: Path) -> bool:
    """False when the interpreter the venv was made from is gone (moved bundle).

    An environment without pyvenv.cfg is a copy of the Windows embeddable
    Python (:mod:`bootstrap.portable`): it names no path outside itself.
    """
    if not (env / "pyvenv.cfg").exists():
        return any(env_python(env).parent.glob("python*._pth"))
    try:
        for line in (env / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return Path(value.strip()).is_dir()
    except OSError:
        return False
    return False


def launcher_env_ready(bundle: Bundle) -> bool:
    env = bundle.launcher_env
    try:
        stamp = json.loads((env / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        stamp.get("requirements_sha256") == requirements_digest(bundle)
        and env_python(env).exists()
        and _venv_home_ok(env)
    )


def _running_in(env: Path) -> bool:
    try:
        return os.path.samefile(sys.prefix, env)
    except OSError:
        return False


def main(argv: list[str]) -> int:
    bundle = Bundle.locate()
    lang = detect_language(lang_flag(argv))
    try:
        check_root_path(bundle.root)
        check_root_path(bundle.code)
        if launcher_env_ready(bundle):
            python = env_python(bundle.launcher_env)
        else:
            from bootstrap.index_choice import read_stage_config
            from bootstrap.launcher_env import prepare_launcher_env, say

            cfg = read_stage_config(bundle)
            lang = detect_language(lang_flag(argv), cfg.language)
            if cfg.problem:
                say(pick(lang, f"config.toml 读取失败，暂用默认设置：{cfg.problem}",
                          f"config.toml could not be read, using defaults for now: {cfg.problem}"))  # fmt: skip
            try:
                python = prepare_launcher_env(bundle, cfg, lang)
            except LauncherEnvError as exc:
                python = env_python(bundle.launcher_env)
                if not (python.exists() and _venv_home_ok(bundle.launcher_env)):
                    raise
                # An update failed, but the environment that worked last time is intact: keep going with it.
                say(f"[{exc.code}] {exc.message(lang)}")
                say(
                    pick(
                        lang,
                        "更新失败，继续使用原有的启动器环境。",
                        "The update failed; continuing with the existing launcher environment.",
                    )
                )
    except YijianError as exc:
        print(f"[{exc.code}] {exc.message(lang)}\n{exc.hint(lang)}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(pick(lang, "已中断。再次运行即可继续。", "Interrupted. Run it again to continue."), file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    env = bundle_environ(bundle)
    if _running_in(bundle.launcher_env) and sys.flags.utf8_mode == (env.get("PYTHONUTF8") == "1"):
        # Already the launcher environment's interpreter (start.sh's fast path): hand over in this
        # process instead of starting another one.  Same interpreter, same flags, same environment.
        import runpy

        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["yijian", *argv]
        runpy.run_module("launcher", run_name="__main__", alter_sys=True)
        return 0  # launcher/__main__.py exits with the command's code
    argv_out = [str(python), "-s", "-m", "launcher", *argv]
    if os.name == "nt":
        from bootstrap import proc

        try:  # the launcher keeps this console (the TUI draws in it) and its keyboard
            return proc.run(
                argv_out, timeout=None, env=env, stdin=None, stdout=None, stderr=None, window=True
            ).returncode
        except KeyboardInterrupt:
            return int(ExitCode.INTERRUPTED)
    os.execve(argv_out[0], argv_out, env)
    return 0  # not reached
