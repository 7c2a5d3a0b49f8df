"""./start.sh end to end, as a user runs it, in bundle copies with local mirrors.

The first start builds env/launcher through the PyPI mirror (here every
Chinese mirror is dead and the "official" index is a local server holding
the launcher's locked wheels), says so in one line, and hands over to the
launcher.  Later starts need no network.  Nothing is written to HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bundle_copy import copy_bundle, pypi_ids, run_start, set_mirror_urls
from tests.support.hermetic import REPO, sealed_env_dict
from tests.support.httpbase import free_port
from tests.support.pypi_index import PackageIndex

pytestmark = pytest.mark.slow


def new_bundle(where: Path, official: str) -> Path:
    """A bundle copy whose Chinese PyPI mirrors are dead and whose official index is ``official``."""
    bundle = copy_bundle(where)
    dead = f"http://127.0.0.1:{free_port()}"
    urls = {i: f"{dead}/{i}/simple" for i in pypi_ids(bundle / "mirrors.toml")}
    urls["pypi"] = official
    set_mirror_urls(bundle / "mirrors.toml", "pypi", urls)
    return bundle


def give_env(src: Path, dest: Path) -> None:
    shutil.copytree(src / "env" / "launcher", dest / "env" / "launcher", symlinks=True)


def home_is_empty(env: dict[str, str]) -> bool:
    return not any(Path(env["HOME"]).iterdir())


@dataclass(frozen=True)
class FirstStart:
    bundle: Path
    result: subprocess.CompletedProcess[str]
    env: dict[str, str]
    official: str


@pytest.fixture(scope="session")
def first_start(tmp_path_factory: pytest.TempPathFactory, launcher_index: PackageIndex) -> FirstStart:
    """One real first start, shared: building env/launcher takes a few seconds."""
    base = tmp_path_factory.mktemp("first start")
    _, env = sealed_env_dict(base / "sealed")
    official = launcher_index.simple_url()
    bundle = new_bundle(base / "my bundle", official)
    result = run_start(bundle, "--help", env=env)
    return FirstStart(bundle, result, env, official)


def test_first_start_builds_the_launcher_env_and_says_why_it_used_the_official_index(first_start: FirstStart) -> None:
    r = first_start.result
    assert r.returncode == 0, r.stderr
    assert "usage: yijian" in r.stdout
    fallback = [line for line in r.stderr.splitlines() if "No Chinese mirror is reachable" in line]
    assert len(fallback) == 1, r.stderr
    assert "tuna" in fallback[0] and "connection refused" in fallback[0]
    assert fallback[0].endswith(f"falling back to the official index {first_start.official}")
    stamp = json.loads((first_start.bundle / "env" / "launcher" / "yijian-env.json").read_text(encoding="utf-8"))
    assert stamp["index"] == first_start.official
    assert not (first_start.bundle / "env" / "launcher.new").exists()
    assert list((first_start.bundle / "logs").glob("bootstrap-*.log"))
    assert home_is_empty(first_start.env)


def test_the_launcher_env_has_the_locked_packages(first_start: FirstStart) -> None:
    py = first_start.bundle / "env" / "launcher" / "bin" / "python"
    out = subprocess.run([str(py), "-c", "import textual, requests, tqdm, huggingface_hub, tomlkit, uv; print('ok')"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "ok"


def test_later_starts_need_no_network_and_work_after_a_move(first_start: FirstStart, tmp_path: Path, sealed) -> None:  # type: ignore[no-untyped-def]
    # A copy somewhere else with a space in its path, every mirror dead: the fast path must not care.
    moved = new_bundle(tmp_path / "moved here" / "一键 bundle", f"http://127.0.0.1:{free_port()}/simple")
    give_env(first_start.bundle, moved)
    r = run_start(moved, "config", "validate")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "does not exist: every setting is at its default" in r.stdout
    assert home_is_empty(dict(os.environ))


def test_arguments_and_exit_codes_pass_through(first_start: FirstStart, tmp_path: Path) -> None:
    bundle = new_bundle(tmp_path / "b", first_start.official)
    give_env(first_start.bundle, bundle)
    r = run_start(bundle, "launch", "--demo", "--no-browser")
    assert r.returncode == 6 and "RUNTIME_ENV_MISSING" in r.stderr  # no generation environment yet: run setup
    r = run_start(bundle, "mirrors", "use", "pypi", "nonsense")
    assert r.returncode == 2 and "MIRROR_CHOICE_INVALID" in r.stderr
    r = run_start(bundle, "config", "set", "launch.port", "7861")
    assert r.returncode == 0 and (bundle / "config.toml").read_text(encoding="utf-8").count("port = 7861") == 1


def test_chinese_help_by_locale(first_start: FirstStart, tmp_path: Path) -> None:
    bundle = new_bundle(tmp_path / "b", first_start.official)
    give_env(first_start.bundle, bundle)
    env = {**os.environ, "LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"}
    env.pop("YIJIAN_LANG", None)
    r = run_start(bundle, "--help", env=env)
    assert "用法：yijian" in r.stdout and "命令" in r.stdout
    assert "usage: yijian" in run_start(bundle, "--lang", "en", "--help", env=env).stdout


def test_update_that_cannot_install_keeps_the_working_env(first_start: FirstStart, tmp_path: Path) -> None:
    bundle = new_bundle(tmp_path / "b", f"http://127.0.0.1:{free_port()}/simple")  # nothing reachable
    give_env(first_start.bundle, bundle)
    with open(bundle / "requirements" / "launcher.txt", "a", encoding="utf-8") as fh:
        fh.write("# a newer launcher\n")
    r = run_start(bundle, "config", "validate")
    assert r.returncode == 0, r.stderr
    assert "LAUNCHER_ENV_FAILED" in r.stderr
    assert "continuing with the existing launcher environment" in r.stderr
    assert (bundle / "env" / "launcher" / "bin" / "python").exists()
    assert not (bundle / "env" / "launcher.new").exists()


def test_no_reachable_index_and_no_env_fails_clearly(tmp_path: Path) -> None:
    bundle = new_bundle(tmp_path / "b", f"http://127.0.0.1:{free_port()}/simple")
    r = run_start(bundle, "--help")
    assert r.returncode == 6
    assert "LAUNCHER_ENV_FAILED" in r.stderr and "Mirrors tried:" in r.stderr
    assert "logs/bootstrap-" in r.stderr
    assert not (bundle / "env" / "launcher").exists() and not (bundle / "env" / "launcher.new").exists()


@pytest.fixture
def slow_index(launcher_wheel_dir: Path) -> Iterator[PackageIndex]:
    with PackageIndex(root=launcher_wheel_dir) as index:
        yield index


def test_interrupted_rebuild_keeps_the_old_env_and_the_next_start_finishes(
    first_start: FirstStart, tmp_path: Path, slow_index: PackageIndex
) -> None:
    bundle = new_bundle(tmp_path / "b", slow_index.simple_url())
    give_env(first_start.bundle, bundle)
    old_stamp = (bundle / "env" / "launcher" / "yijian-env.json").read_text(encoding="utf-8")
    with open(bundle / "requirements" / "launcher.txt", "a", encoding="utf-8") as fh:
        fh.write("# a newer launcher\n")
    slow_index.slow_down(0.5)
    env = {k: v for k, v in os.environ.items() if k != "YIJIAN_HOME"}  # the bundle is its own root
    proc = subprocess.Popen([str(bundle / "start.sh"), "--help"], cwd=bundle, start_new_session=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)  # fmt: skip
    staging = bundle / "env" / "launcher.new" / "bin" / "python"
    deadline = time.monotonic() + 60
    while not staging.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if not staging.exists():
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the rebuild never started: rc={proc.returncode} {err.decode()[-2000:]}")
    time.sleep(1.0)  # pip is now talking to the slow index
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The environment in use is still the old, complete one.
    assert (bundle / "env" / "launcher" / "yijian-env.json").read_text(encoding="utf-8") == old_stamp
    slow_index.heal()
    r = run_start(bundle, "config", "validate")
    assert r.returncode == 0, r.stderr
    assert (bundle / "env" / "launcher" / "yijian-env.json").read_text(encoding="utf-8") != old_stamp
    assert not (bundle / "env" / "launcher.new").exists() and not (bundle / "env" / "launcher.old").exists()


def test_a_root_with_a_colon_is_refused_up_front(tmp_path: Path) -> None:
    bundle = copy_bundle(tmp_path / "a:b")
    r = run_start(bundle, "--help")
    assert r.returncode == 9
    assert "':'" in r.stderr and "Move it to a folder without ':'" in r.stderr


def _tool_dir(tmp_path: Path, *, python: bool, broken: tuple[str, ...] = ()) -> Path:
    """A PATH with the few tools start.sh needs, a working python3 or none, and broken pythons."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "sh", "env"):
        found = shutil.which(tool)
        assert found
        os.symlink(found, bin_dir / tool)
    if python:
        os.symlink(sys.executable, bin_dir / "python3")
    for name in broken:  # like a pyenv shim for a version that is not active
        (bin_dir / name).write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def test_no_python_anywhere_says_what_to_do(tmp_path: Path) -> None:
    bundle = copy_bundle(tmp_path / "b")
    env = {**os.environ, "PATH": str(_tool_dir(tmp_path, python=False))}
    r = run_start(bundle, "--help", env=env)
    assert r.returncode == 6
    assert "No Python 3.10 or newer was found" in r.stderr and "python/" in r.stderr
    assert "没有找到 Python 3.10" in r.stderr


def test_a_broken_python_on_path_is_skipped(tmp_path: Path) -> None:
    bundle = new_bundle(tmp_path / "b", f"http://127.0.0.1:{free_port()}/simple")
    env = {**os.environ, "PATH": str(_tool_dir(tmp_path, python=True, broken=("python3.13", "python3.12")))}
    r = run_start(bundle, "--help", env=env)
    # Stage 0 ran (under the working python3) and failed only because no index is reachable.
    assert r.returncode == 6 and "LAUNCHER_ENV_FAILED" in r.stderr, r.stderr
    assert "pyenv" not in r.stderr
    assert "Could not prepare the launcher environment" in r.stderr


def test_the_repository_start_script_is_the_one_copied() -> None:
    assert os.access(REPO / "start.sh", os.X_OK)
    assert (REPO / "start.bat").read_bytes().count(b"\r\n") > 10  # CRLF, or cmd.exe misreads it


def test_the_doctor_sees_the_users_own_pythonpath_that_start_sh_replaced(
    first_start: FirstStart, tmp_path: Path
) -> None:
    bundle = new_bundle(tmp_path / "b", first_start.official)
    give_env(first_start.bundle, bundle)
    env = {**os.environ, "PYTHONPATH": "/opt/my-sd-scripts", "PYTHONHOME": "/opt/py"}
    r = run_start(bundle, "doctor", "--no-env", "--json", env=env)
    found = {f["code"]: f for f in json.loads(r.stdout)["findings"]}
    assert found["PYTHONPATH_SET"]["values"] == {"vars": "PYTHONPATH=/opt/my-sd-scripts; PYTHONHOME=/opt/py"}
    r = run_start(bundle, "doctor", "--no-env", "--json")
    assert "PYTHONPATH_SET" not in {f["code"] for f in json.loads(r.stdout)["findings"]}


@pytest.mark.tmux
def test_the_tui_in_a_real_terminal(first_start: FirstStart, tmp_path: Path) -> None:
    """``./start.sh`` in tmux: the home page with this machine's state, keys move through pages, F2, ctrl+q."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (tests/run.sh installs it)")
    bundle = new_bundle(tmp_path / "终端 bundle", first_start.official)
    give_env(first_start.bundle, bundle)
    sock, session = f"yijian-test-{os.getpid()}", "t"
    env = {k: v for k, v in first_start.env.items() if k != "YIJIAN_HOME"}

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, env=env).stdout

    def screen_with(text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        shown = ""
        while time.monotonic() < deadline:
            shown = tmux("capture-pane", "-t", session, "-p")
            if text in shown:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not on screen:\n{shown}")

    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", f"cd '{bundle}' && ./start.sh --lang zh; sleep 5")
    try:
        shown = screen_with("未检测到 NVIDIA 显卡")  # the real probe: no GPU here
        for page in ("高级选项", "疑难解答", "模型管理", "网络/镜像", "环境", "控制台"):
            assert page in shown
        assert "1. 预检" in shown
        tmux("send-keys", "-t", session, "F2")
        screen_with("Troubleshoot")
        tmux("send-keys", "-t", session, "C-q")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "Troubleshoot" in tmux("capture-pane", "-t", session, "-p"):
            time.sleep(0.2)
        assert "Troubleshoot" not in tmux("capture-pane", "-t", session, "-p")
    finally:
        tmux("kill-server")
    assert home_is_empty(first_start.env)
