"""Planted secrets never reach logs/, the sysinfo zip, command output or the runtime's command line.

Each kind of secret is given the way a user gives it: the UI login by
``launch --auth``, by ``config set launch.auth``, by ``COMMANDLINE_ARGS
--gradio-auth``, in a ``webui-user.bat`` and abbreviated (``-- --api-au``); a Civitai token and a proxy password by ``config set``; a
Hugging Face token, a Civitai token and a proxy password in the
environment; a Basic ``Authorization`` header and a ``?token=`` query sent
to the API.  The launcher's real paths run (``launch --demo`` serving
requests, then ``sysinfo``), and then every file under logs/, every member of
the zip, every command's output and ``/proc/PID/cmdline`` of the runtime are
searched for each secret as it is, URL-encoded and (a login) as its Basic
header.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.functional import test_runtime_process as rp
from tests.functional.test_runtime_process import READY, launcher, launcher_env, stop, wait_for
from tests.support.httpbase import free_port

bundle_with_env = rp.bundle_with_env  # the fixtures of the launcher's process tests
runtime_env = rp.runtime_env
pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]

SECRETS = {
    "ui-cli": "PwCli7Kq2Lm9Zx4Vb",
    "ui-config": "PwCfg3Hs8Jd1Wn6Qt",
    "ui-commandline-args": "PwEnv5Rf2Yg7Uk3Np",
    "civitai-config": "9f86d081884c7d659a2feaa0c55ad015",
    "civitai-env": "c0ffee0ddba11f00d5eed1234567890a",
    "hf-env": "hf_QwErTyUiOpAsDfGhJkLzXcVbNm123456",
    "proxy-env": "PxEnv4Tg6Hy8Uj",
    "proxy-config": "PxCfg2Wd5Ec7Rv",
    "api-query-token": "QtOk8Mn3Bv6Cx1Za",
    "ui-webui-user": "PwWeb4Ks9Lq2Xe",
    "ui-abbreviated": "PwAbr6Tn3Gm8Yw",
}
USERS = {"ui-cli": "alice", "ui-config": "carol", "ui-commandline-args": "erin", "ui-webui-user": "fay",
         "ui-abbreviated": "gus"}  # fmt: skip


def forms(name: str, value: str) -> list[str]:
    out = {value, quote(value, safe="")}
    if name in USERS:
        out.add(base64.b64encode(f"{USERS[name]}:{value}".encode()).decode())
    return sorted(out)


def leaks(label: str, text: str) -> list[str]:
    return [f"{name} in {label}" for name, value in SECRETS.items() for f in forms(name, value) if f in text]


def scan_files(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        found += leaks(str(path.relative_to(root)), path.read_bytes().decode("utf-8", "replace"))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for member in zf.namelist():
                    found += leaks(f"{path.name}!{member}", zf.read(member).decode("utf-8", "replace"))
    return found


def children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def api(port: int, path: str, login: str | None) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if login:
        req.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def run(bundle: Path, env: dict[str, str], *args: str) -> str:
    r = subprocess.run([*launcher(bundle), *args], capture_output=True, text=True, timeout=600, cwd=bundle, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def serve(bundle: Path, env: dict[str, str], args: list[str], login: str, found: list[str], label: str) -> None:
    """``launch --demo``: the login works, the runtime's argv holds no secret, requests carry secrets in."""
    port = free_port()
    proc = subprocess.Popen([*launcher(bundle), "launch", "--demo", "--no-browser", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=bundle, env=env,
                            start_new_session=True)  # fmt: skip
    try:
        lines = wait_for(proc, "The generation UI is ready")
        assert any(READY.format(port=port) in line for line in lines)
        runtimes = children(proc.pid)
        assert runtimes, "the runtime process was not found"
        for pid in runtimes:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            assert "runtime" in cmdline
            found += leaks(f"cmdline of the runtime ({label})", cmdline)
        user = login.split(":")[0]
        assert api(port, "/sdapi/v1/options", None) == 401  # the login reached the runtime ...
        assert api(port, "/sdapi/v1/options", login) == 200  # ... and is the one given
        assert api(port, "/sdapi/v1/options", f"{user}:wrong") == 401
        assert api(port, f"/sdapi/v1/options?token={SECRETS['api-query-token']}", login) == 200
    finally:
        stop(proc)
    found += leaks(f"console output ({label})", "\n".join(lines) + (proc.stdout.read() if proc.stdout else ""))


def test_planted_secrets_appear_nowhere(bundle_with_env: Path, runtime_env: dict[str, str]) -> None:
    bundle = bundle_with_env
    env = launcher_env(bundle, runtime_env)
    env.update(HF_TOKEN=SECRETS["hf-env"], CIVITAI_TOKEN=SECRETS["civitai-env"],
               HTTPS_PROXY=f"http://bob:{SECRETS['proxy-env']}@127.0.0.1:9",
               HTTP_PROXY=f"http://bob:{SECRETS['proxy-env']}@127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")  # fmt: skip
    found: list[str] = []

    # config set: saved, never echoed; config show masks them
    out = run(bundle, env, "config", "set", "downloads.civitai_token", SECRETS["civitai-config"])
    out += run(bundle, env, "config", "set", "network.proxy", f"http://dave:{SECRETS['proxy-config']}@127.0.0.1:9")
    found += leaks("config set output", out)
    assert "saved downloads.civitai_token = ***" in out
    text = (bundle / "config.toml").read_text(encoding="utf-8")
    assert SECRETS["civitai-config"] in text and SECRETS["proxy-config"] in text  # saved, as the user asked
    shown = run(bundle, env, "config", "show") + run(bundle, env, "config", "show", "--json")
    found += leaks("config show output", shown)

    # a login in COMMANDLINE_ARGS (A1111's habit), with the rest of it
    with_args = {**env, "COMMANDLINE_ARGS": f"--xformers --gradio-auth erin:{SECRETS['ui-commandline-args']}"}
    serve(bundle, with_args, [], f"erin:{SECRETS['ui-commandline-args']}", found, "COMMANDLINE_ARGS")

    # a webui-user.bat copied from an A1111 install, and an abbreviated --api-auth after -- (which wins)
    bat = bundle / "webui-user.bat"
    bat.write_bytes(f"@echo off\r\nset COMMANDLINE_ARGS=--xformers --gradio-auth fay:{SECRETS['ui-webui-user']}\r\n"
                    "call webui.bat\r\n".encode())  # fmt: skip
    login = f"gus:{SECRETS['ui-abbreviated']}"
    serve(bundle, env, ["--webui-user", str(bat), "--", "--api-au", login], login, found, "webui-user and --api-au")

    # a login in config.toml, and one on the launcher's command line (which wins)
    out = run(bundle, env, "config", "set", "launch.auth", f"carol:{SECRETS['ui-config']}")
    found += leaks("config set output", out)
    serve(bundle, env, ["--auth", f"alice:{SECRETS['ui-cli']}"], f"alice:{SECRETS['ui-cli']}", found, "--auth")

    # the diagnostic bundle, written with the same environment
    out = run(bundle, env, "sysinfo", "--out", str(bundle / "logs" / "sysinfo.zip"))
    found += leaks("sysinfo output", out)

    logs = bundle / "logs"
    assert (logs / "yijian.log").is_file() and (logs / "runtime.log").is_file() and (logs / "sysinfo.zip").is_file()
    assert "Running on local URL" in (logs / "runtime.log").read_text(encoding="utf-8")
    assert "--auth ***" in (logs / "yijian.log").read_text(encoding="utf-8")  # the command was logged, masked
    found += scan_files(logs)
    assert not found, "\n".join(found)
