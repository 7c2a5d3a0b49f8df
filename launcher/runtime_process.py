"""Starting the generation runtime as a child process, and watching it.

The runtime runs in the bundle environment's own interpreter
(``env/runtime``), never in the launcher's: a broken torch can only break
the child, and the launcher stays up to diagnose it.  Its output is copied
line by line to ``logs/runtime.log`` and to whoever watches (the CLI prints
it, the TUI's console page shows it); the launcher knows the UI is up when
the child prints ``Running on local URL:``.  Every line is masked by the one
redaction layer (bootstrap/redact.py) before anyone sees it, and the UI login
reaches the child in its environment, never its command line
(:func:`take_logins`, :func:`login_environ`).  When the child exits with an
error, its log is scanned by the doctor's signatures so the user sees the
cause in plain words, not only a traceback.

UI-free: the CLI and the TUI both drive it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap import proc as procs
from bootstrap.a1111_flags import (
    SECRET_FLAGS,
    YIJIAN_FLAGS,
    Parsed,
    commandline_args,
    expand_names,
    parse_flags,
    read_webui_user,
    split_commandline,
    take_flags,
)
from bootstrap.layout import Bundle, bundle_environ, env_python
from bootstrap.login import LOGIN_ENV, logins_in, take_login_flags
from bootstrap.redact import redact, redact_argv, remember
from launcher.errors import ListenNeedsAuth, RuntimeEnvMissing

READY = re.compile(r"Running on local URL:\s*(http://\S+)")
RUNTIME_ENV = "runtime"


@dataclass
class LaunchOptions:
    port: int = 7860
    listen: bool = False
    auth: str = ""
    insecure_no_auth: bool = False
    vram: str = "auto"
    attention: str = "auto"
    precision: str = "auto"
    api: bool = True
    open_browser: bool = True
    demo: bool = False
    model: str | None = None
    lang: str = "zh"
    extra_model_dirs: Sequence[str] = ()
    passthrough: Sequence[str] = ()  # A1111-style flags handed on as they are (after --): they win
    saved_args: Sequence[str] = ()  # A1111 flags from launch.args: below everything else
    webui_args: Sequence[str] = ()  # A1111 flags from a webui-user file: above COMMANDLINE_ARGS, below --
    saved_flags: Sequence[str] = ()  # launch.args, COMMANDLINE_ARGS and the webui-user flags, logins taken out
    a1111: Parsed = field(default_factory=Parsed)  # every flag the runtime gets, read (by take_logins)
    extra_environ: Mapping[str, str] = field(default_factory=dict)  # from a webui-user file (PYTORCH_CUDA_ALLOC_CONF …)

    def check(self) -> None:
        if self.listen and not self.auth and not self.insecure_no_auth:
            raise ListenNeedsAuth()


def options_from_config(cfg: Any, lang: str, **overrides: Any) -> LaunchOptions:
    """Launch options from the settings (``launch.*``, ``models.extra_dirs``); ``overrides`` win when not None."""
    options = LaunchOptions(
        saved_args=split_commandline(cfg.get_str("launch.args")),
        port=cfg.get_int("launch.port"), listen=cfg.get_bool("launch.listen"), auth=cfg.get_str("launch.auth"),
        vram=cfg.get_str("launch.vram"), attention=cfg.get_str("launch.attention"),
        precision=cfg.get_str("launch.precision"), api=cfg.get_bool("launch.api"),
        open_browser=cfg.get_bool("launch.open_browser"), lang=lang, extra_model_dirs=list(cfg["models.extra_dirs"]),
    )  # fmt: skip
    for key, value in overrides.items():
        if value is not None:
            setattr(options, key, value)
    return options


def add_webui_user(options: LaunchOptions, path: str, lang: str) -> str | None:
    """Take the A1111 flags and the torch/CUDA variables of a webui-user.bat/.sh; the warning line, if any."""
    found = read_webui_user(path)
    options.webui_args = [*options.webui_args, *found.args]
    options.extra_environ = {**options.extra_environ, **found.environ}
    remember(*found.environ.values())
    return found.warning(lang)


def runtime_python(bundle: Bundle) -> Path:
    python = env_python(bundle.env_dir / RUNTIME_ENV)
    if not python.exists():
        raise RuntimeEnvMissing(env=str(bundle.env_dir / RUNTIME_ENV))
    return python


def argv_for(bundle: Bundle, options: LaunchOptions) -> list[str]:
    argv = [str(runtime_python(bundle)), "-s", "-u", "-m", "runtime", "--root", str(bundle.root),
            "--port", str(options.port), "--vram", options.vram, "--attention", options.attention,
            "--precision", options.precision, "--lang", options.lang]  # fmt: skip
    if options.listen:
        argv.append("--listen")
    if options.insecure_no_auth:
        argv.append("--insecure-no-auth")
    if not options.api:
        argv.append("--no-api")
    if not options.open_browser:
        argv.append("--no-browser")
    if options.demo:
        argv.append("--demo")
    if options.model:
        argv += ["--model", options.model]
    for folder in options.extra_model_dirs:
        argv += ["--extra-models-dir", str(folder)]
    return [*argv, *options.saved_flags, *options.passthrough]


def child_env(bundle: Bundle, base: dict[str, str]) -> dict[str, str]:
    env = bundle_environ(bundle, base)
    for key in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "COMMANDLINE_ARGS"):
        env.pop(key, None)
    env.update(PYTHONPATH=str(bundle.code), PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PYTHONUTF8="1",
               YIJIAN_HOME=str(bundle.root), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")  # fmt: skip
    env.setdefault("OMP_NUM_THREADS", env.get("OMP_NUM_THREADS", "") or str(min(8, os.cpu_count() or 1)))
    return env


def take_logins(options: LaunchOptions, environ: Mapping[str, str]) -> None:
    """Gather the A1111 flags the runtime gets, and every login into ``options.auth``, so none stays among them.

    The flags, lowest first (a later one wins, as in A1111's argparse): ``launch.args``, the user's
    ``COMMANDLINE_ARGS``, a webui-user file, then those after ``--``.  They are checked here against A1111's
    flags and the runtime's own, so a typo stops before a runtime starts.  Login flags (``--gradio-auth``,
    ``--api-auth``, ``--auth``, ``--gradio-auth-path``, abbreviated or not) leave them: those after ``--``
    win, being the most explicit; then the launcher's own login (``--auth``, else ``launch.auth``); then the
    saved ones (``COMMANDLINE_ARGS``, webui-user, launch.args).
    """
    saved = [*options.saved_args, *commandline_args(environ), *options.webui_args]
    saved, from_saved = take_login_flags(expand_names(saved))
    passthrough, given = take_login_flags(expand_names(list(options.passthrough)))
    options.a1111 = parse_flags([*saved, *passthrough], YIJIAN_FLAGS)
    (saved, dropped), (passthrough, dropped_too) = (
        take_flags(saved, SECRET_FLAGS),
        take_flags(passthrough, SECRET_FLAGS),
    )
    remember(*(value for _, value in [*dropped, *dropped_too]))  # an ngrok token: no effect here, never on argv
    options.saved_flags, options.passthrough = saved, passthrough
    options.auth = ",".join(given) or options.auth or ",".join(from_saved)
    options.listen = options.listen or "--listen" in options.a1111.rest  # so that check() asks for the login now
    remember(options.auth, *options.auth.split(","))
    logins_in(options.auth)  # a malformed --auth is refused here, before a runtime starts, without echoing it


def login_environ(options: LaunchOptions, env: dict[str, str]) -> dict[str, str]:
    """The child's environment with the login in ``YIJIAN_AUTH`` (see bootstrap/login.py for why not a file)."""
    env.pop(LOGIN_ENV, None)
    if options.auth:
        env[LOGIN_ENV] = options.auth
    return env


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def next_free_port(start: int, tries: int = 20) -> int | None:
    for port in range(start, min(start + tries, 65536)):
        if port_free(port):
            return port
    return None


@dataclass
class RuntimeProcess:
    """A started runtime: its output lines, its URL once ready, and how to stop it."""

    proc: procs.Popen[bytes]
    log_path: Path
    on_line: Callable[[str], None] | None = None
    url: str | None = None
    lines: list[str] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_path, "w", encoding="utf-8") as log:
            log.write(f"--- runtime started {time.strftime('%Y-%m-%d %H:%M:%S')}: {redact_argv(self.proc.args)}\n")  # type: ignore[arg-type]
            for raw in iter(self.proc.stdout.readline, b""):
                line = redact(raw.decode("utf-8", "replace").rstrip("\r\n"))  # the log, the watchers, the doctor
                log.write(line + "\n")
                log.flush()
                self.lines.append(line)
                del self.lines[:-400]  # the tail is what diagnosis needs
                if self.on_line is not None:
                    self.on_line(line)
                m = READY.search(line)
                if m and not self._ready.is_set():
                    self.url = m.group(1)
                    self._ready.set()
        self._ready.set()  # EOF: nobody waits forever

    def wait_ready(self, timeout: float) -> str | None:
        """The UI's URL once it is ready; None if the child exited or the time ran out."""
        self._ready.wait(timeout)
        return self.url

    def wait(self) -> int:
        rc = self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return rc

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (Ctrl+Break to its own group on Windows), then kill after ``timeout`` seconds."""
        procs.stop(self.proc, timeout)
        rc = self.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the lifeline: only now, so the child never sees two stop requests
        return rc

    def output(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt while a runtime runs, so the caller stops it cleanly."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    before = {sig: signal.signal(sig, interrupt) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def start(bundle: Bundle, options: LaunchOptions, environ: dict[str, str],
          on_line: Callable[[str], None] | None = None) -> RuntimeProcess:  # fmt: skip
    take_logins(options, environ)
    env = login_environ(options, {**child_env(bundle, environ), **options.extra_environ})
    options.check()
    argv = argv_for(bundle, options)
    bundle.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = bundle.logs_dir / "runtime.log"
    if log_path.exists():  # one run per file, so the doctor never reads an old run's error as today's
        os.replace(log_path, bundle.logs_dir / "runtime.previous.log")
    # On POSIX the child stays in the launcher's process group: Ctrl-C in the terminal, a closed terminal (SIGHUP)
    # or a signal to the group reach both.  On Windows it gets its own group, so that stop() can send it Ctrl+Break.
    # Whatever kills the launcher (kill -9 too) closes the pipe on the child's stdin: the lifeline it watches.
    env[procs.LIFELINE_ENV] = procs.LIFELINE_STDIN
    proc = procs.start_bytes(argv, stdin=procs.PIPE, env=env, cwd=bundle.root, window=True, new_group=True)
    rp = RuntimeProcess(proc, log_path, on_line)
    rp._reader = threading.Thread(target=rp._read, name="runtime-output", daemon=True)
    rp._reader.start()
    return rp
