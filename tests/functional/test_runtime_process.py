"""``python -m runtime`` and ``yijian launch`` as processes: the ready line, proxies, refusals.

The bundle environment here is the development venv (a symlink at
``env/runtime``), which holds everything the runtime needs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bundle_copy import copy_bundle
from tests.support.child_process import stop, wait_for
from tests.support.hermetic import REPO
from tests.support.httpbase import free_port

pytestmark = pytest.mark.slow
READY = "Running on local URL:  http://127.0.0.1:{port}"


def txt2img(port: int) -> dict[str, object]:
    body = json.dumps({"prompt": "a cat", "seed": 1234, "steps": 3, "width": 64, "height": 64}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/sdapi/v1/txt2img", data=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    result: dict[str, object] = json.load(opener.open(req, timeout=120))
    return result


@pytest.fixture
def runtime_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def start_runtime(args: list[str], env: dict[str, str], root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "runtime", "--no-browser", "--root", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(REPO),
                            start_new_session=True)  # fmt: skip


def test_demo_prints_the_ready_line_through_proxies(runtime_env: dict[str, str], tmp_path: Path) -> None:
    # A desktop with a system proxy: HTTP_PROXY pointing at a dead port, no NO_PROXY, and a SOCKS ALL_PROXY
    # without socksio.  Gradio's launch would fail on either; ours serves anyway.
    for key in ("NO_PROXY", "no_proxy"):
        runtime_env.pop(key, None)
    runtime_env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
                       ALL_PROXY="socks5://127.0.0.1:9")  # fmt: skip
    port = free_port()
    proc = start_runtime(["--demo", "--port", str(port)], runtime_env, tmp_path)
    try:
        wait_for(proc, READY.format(port=port))
        info = json.loads(str(txt2img(port)["info"]))
        assert info["seed"] == 1234
    finally:
        stop(proc)


def test_listen_without_auth_is_refused_before_anything_loads(runtime_env: dict[str, str], tmp_path: Path) -> None:
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "runtime", "--demo", "--listen", "--root", str(tmp_path)],
                       capture_output=True, text=True, env=runtime_env, cwd=str(REPO), timeout=120)  # fmt: skip
    assert r.returncode == 2
    assert "LISTEN_WITHOUT_AUTH" in r.stderr and "--auth" in r.stderr
    assert time.monotonic() - started < 30


def launcher(bundle: Path) -> list[str]:
    """``yijian`` from a bundle copy, run in the dev venv (stage 0 and start.sh are tested in test_start_sh)."""
    return [sys.executable, "-m", "launcher", "--lang", "en"]


def launcher_env(bundle: Path, base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k != "YIJIAN_HOME"}  # the bundle is its own root
    env["PYTHONPATH"] = str(bundle)
    return env


@pytest.fixture
def bundle_with_env(tmp_path: Path) -> Iterator[Path]:
    bundle = copy_bundle(tmp_path / "b")
    (bundle / "env").mkdir(exist_ok=True)
    (bundle / "env" / "runtime").symlink_to(Path(sys.prefix))  # the dev venv stands in for env/runtime
    yield bundle


def launch_demo(bundle: Path, runtime_env: dict[str, str], port: int) -> subprocess.Popen[str]:
    """``yijian launch --demo`` in a session of its own (so that stop() reaches the runtime too)."""
    return subprocess.Popen([*launcher(bundle), "launch", "--demo", "--no-browser", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=bundle,
                            env=launcher_env(bundle, runtime_env), start_new_session=True)  # fmt: skip


def test_launch_demo_serves_and_stops(bundle_with_env: Path, runtime_env: dict[str, str]) -> None:
    port = free_port()
    proc = launch_demo(bundle_with_env, runtime_env, port)
    try:
        lines = wait_for(proc, "The generation UI is ready")
        assert any(READY.format(port=port) in line for line in lines)
        assert txt2img(port)["images"]
        log = (bundle_with_env / "logs" / "runtime.log").read_text(encoding="utf-8")
        assert log.count("Running on local URL") == 1
        # The dev venv has no torchvision (like the CPU pack built from a folder holding only torch): no notices.
        assert "requires torchvision" not in log
    finally:
        stop(proc)
    assert proc.returncode is not None


def test_launch_listen_without_auth_is_refused(bundle_with_env: Path, runtime_env: dict[str, str]) -> None:
    r = subprocess.run([*launcher(bundle_with_env), "launch", "--demo", "--no-browser", "--listen"], capture_output=True,
                       text=True, timeout=120, cwd=bundle_with_env, env=launcher_env(bundle_with_env, runtime_env))  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--auth" in r.stderr


def test_launch_without_an_environment_says_to_run_setup(tmp_path: Path, runtime_env: dict[str, str]) -> None:
    bundle = copy_bundle(tmp_path / "b")
    r = subprocess.run([*launcher(bundle), "launch", "--demo", "--no-browser"], capture_output=True, text=True,
                       timeout=120, cwd=bundle, env=launcher_env(bundle, runtime_env))  # fmt: skip
    assert r.returncode == 6, r.stdout + r.stderr
    assert "setup" in r.stderr and "RUNTIME_ENV_MISSING" in r.stderr


def test_a_crashing_runtime_is_diagnosed(bundle_with_env: Path, runtime_env: dict[str, str]) -> None:
    # the port is taken: the runtime exits, and the launcher names the cause from its log
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([*launcher(bundle_with_env), "launch", "--demo", "--no-browser", "--port", str(port)],
                           capture_output=True, text=True, timeout=300, cwd=bundle_with_env,
                           env=launcher_env(bundle_with_env, runtime_env))  # fmt: skip
    assert r.returncode == 7, r.stdout + r.stderr
    assert "PORT_IN_USE" in r.stderr


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_runtime_exits_when_its_launcher_is_killed(bundle_with_env: Path, runtime_env: dict[str, str]) -> None:
    port = free_port()
    proc = launch_demo(bundle_with_env, runtime_env, port)
    children: list[int] = []
    try:
        wait_for(proc, "The generation UI is ready")
        children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert children, "the launcher started no runtime process"
        assert not _port_free(port)
        os.kill(proc.pid, signal.SIGKILL)  # the launcher only: nothing tells the runtime to stop
        proc.wait(10)
        deadline = time.monotonic() + 15
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(c) for c in children), "the runtime outlived its launcher by 15 s"
        assert _port_free(port)
    finally:
        for c in children:
            if _alive(c):
                os.kill(c, signal.SIGKILL)
        stop(proc)
