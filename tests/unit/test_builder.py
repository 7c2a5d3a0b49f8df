"""The environment builder against the harness indexes: fake CUDA torch, real installers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bootstrap.builder import state
from bootstrap.builder.build import build, make_plan, runtime_env
from bootstrap.builder.install import InstallSpec, installer_env, pip_steps, uv_bin, uv_steps
from bootstrap.builder.wheels import find_wheel, matches
from bootstrap.layout import Bundle, bundle_environ, env_python
from launcher.errors import EnvironmentBuildFailed
from launcher.mirrors.sources import Source
from tests.support.plugin_index import Wheelhouse
from tests.support.pypi_index import PackageIndex
from tests.support.wheels import build_wheel, fake_xformers

pytestmark = pytest.mark.slow

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
CU128 = ["torch==2.7.1+cu128", "torchvision==0.22.1+cu128", "xformers==0.0.31"]


def pack(cuda: str = "cu128") -> types.SimpleNamespace:
    return types.SimpleNamespace(
        id=f"test-{cuda}", python=PY, torch="2.7.1+" + cuda, torchvision="0.22.1+" + cuda, cuda=cuda
    )


def src(channel: str, url: str, kind: str = "pep503") -> Source:
    return Source(channel, "local-" + channel, url, kind, url, url)


@pytest.fixture
def bundle(sealed) -> Bundle:  # type: ignore[no-untyped-def]
    b = Bundle.locate()
    b.ensure_dirs()
    return b


def env_for(bundle: Bundle, tmp_path: Path) -> dict[str, str]:
    env = bundle_environ(bundle)
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    env["UV_HTTP_RETRIES"] = "0"
    return env


def test_installer_command_lines_are_exact(tmp_path: Path) -> None:
    spec = InstallSpec(src("pypi", "https://pypi.tuna.tsinghua.edu.cn/simple"), src("torch", "https://mirror.nju.edu.cn/pytorch/whl/cu128"),
                       CU128, tmp_path / "rt.txt", tmp_path / "c.txt")  # fmt: skip
    uv = Path("/uv")
    torch_step, runtime_step = uv_steps(uv, Path("/env/bin/python"), spec)
    assert torch_step.argv == ["/uv", "pip", "install", "--no-config", "--python", "/env/bin/python",
                               "--index", "pytorch=https://mirror.nju.edu.cn/pytorch/whl/cu128",
                               "--default-index", "https://pypi.tuna.tsinghua.edu.cn/simple", *CU128]  # fmt: skip
    assert runtime_step.argv == ["/uv", "pip", "install", "--no-config", "--python", "/env/bin/python",
                                 "--default-index", "https://pypi.tuna.tsinghua.edu.cn/simple",
                                 "--constraint", str(tmp_path / "c.txt"), "--requirement", str(tmp_path / "rt.txt")]  # fmt: skip
    flat = InstallSpec(src("pypi", "/wheels", "local"), src("torch", "https://mirrors.aliyun.com/pytorch-wheels/cu121/", "flat"),
                       CU128, tmp_path / "rt.txt", tmp_path / "c.txt")  # fmt: skip
    pip_torch = pip_steps(Path("/env/bin/python"), flat, tmp_path / "pip")[0].argv
    assert pip_torch[:6] == [sys.executable, "-m", "pip", "--python", "/env/bin/python", "install"]
    assert "--isolated" in pip_torch and pip_torch[-5:-3] == [
        "--find-links",
        "https://mirrors.aliyun.com/pytorch-wheels/cu121/",
    ]
    assert ["--no-index", "--find-links", "/wheels"] == pip_torch[-8:-5]


def test_installer_environment_drops_the_users_settings() -> None:
    env = installer_env(
        {"PATH": "/bin", "PIP_INDEX_URL": "x", "UV_INDEX": "y", "UV_CACHE_DIR": "/c", "PYTHONPATH": "/p"}
    )
    assert env == {
        "PATH": "/bin",
        "PIP_CONFIG_FILE": os.devnull,
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": "/c",
        "UV_HTTP_RETRIES": "1",
        "UV_HTTP_TIMEOUT": "30",
    }


def test_wheel_tags() -> None:
    assert matches(
        "torch-2.7.1+cu128-cp311-cp311-manylinux_2_28_x86_64.whl",
        "torch==2.7.1+cu128",
        "cp311",
        ("linux_x86_64", "manylinux"),
    )
    assert matches(
        "torch-2.7.1+cu128-cp311-cp311-linux_x86_64.whl", "torch==2.7.1", "cp311", ("linux_x86_64", "manylinux")
    )
    assert not matches(
        "torch-2.7.1+cu126-cp311-cp311-linux_x86_64.whl", "torch==2.7.1+cu128", "cp311", ("linux_x86_64",)
    )
    assert not matches(
        "torch-2.7.1+cu128-cp312-cp312-linux_x86_64.whl", "torch==2.7.1+cu128", "cp311", ("linux_x86_64",)
    )
    assert matches("torch-2.7.1+cu128-cp311-cp311-win_amd64.whl", "torch==2.7.1+cu128", "cp311", ("win_amd64",))
    assert matches("xformers-0.0.31-cp39-abi3-manylinux_2_28_x86_64.whl", "xformers==0.0.31", "cp311", ("manylinux",))
    assert not matches(
        "xformers-0.0.31-cp312-abi3-manylinux_2_28_x86_64.whl", "xformers==0.0.31", "cp311", ("manylinux",)
    )
    assert matches("xformers-0.0.35-py39-none-manylinux_2_28_x86_64.whl", "xformers==0.0.35", "cp311", ("manylinux",))


def test_big_wheel_is_found_with_its_hash(package_index: PackageIndex, wheelhouse: Wheelhouse) -> None:
    wheel = find_wheel(src("torch", package_index.simple_url("cu128")), "torch==2.7.1+cu128")
    assert wheel is not None and wheel.sha256 and wheel.url.startswith(package_index.url)
    flat = find_wheel(src("torch", package_index.flat_url("cu128"), "flat"), "torch==2.7.1+cu128")
    assert flat is not None and flat.filename == wheel.filename
    local = find_wheel(src("torch", str(wheelhouse.variants["cu128"]), "local"), "torch==2.7.1+cu128")
    assert local is not None and local.local


def _plan(bundle: Bundle, package_index: PackageIndex, requirements: list[str], cuda: str = "cu128"):  # type: ignore[no-untyped-def]
    pins = CU128 if cuda == "cu128" else ["torch==2.7.1+cpu"]
    return make_plan(bundle, pack(cuda), pins, requirements, src("pypi", package_index.simple_url()),
                     src("torch", package_index.simple_url(cuda)))  # fmt: skip


def test_build_prefetches_torch_installs_under_constraints_and_then_is_a_no_op(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    plan = _plan(bundle, package_index, ["tinypkg==1.0", "needs-torch==1.0"])
    assert not plan.noop and [w.filename.split("-")[1] for w in plan.big_wheels] == ["2.7.1+cu128"]
    doc = plan.to_json()
    assert doc["pack"]["cuda"] == "cu128" and doc["pins"] == CU128 and doc["big_wheels"][0]["sha256"]
    events: list[str] = []
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: events.append(e.step))
    assert events[:2] == ["venv", "prefetch"] and events[-3:] == ["check", "swap", "done"]
    env = runtime_env(bundle)
    have = state.installed(env)
    assert have["torch"] == "2.7.1+cu128" and have["xformers"] == "0.0.31" and have["tinypkg"] == "1.0"
    assert stamp["pack"] == "test-cu128" and (bundle.cache_dir / "wheels" / plan.big_wheels[0].filename).exists()
    assert (env / "yijian-constraints.txt").read_text().split() == CU128
    assert not env.with_name("runtime.new").exists() and not env.with_name("runtime.old").exists()
    # Everything holds now: the next plan is a no-op and so is the build.
    again = _plan(bundle, package_index, ["tinypkg==1.0", "needs-torch==1.0"])
    assert again.noop and again.big_wheels == []
    assert build(bundle, again, base_env=env_for(bundle, tmp_path), on_event=lambda e: events.append(e.step)) == stamp
    assert events[-1] == "noop"


def test_constraints_keep_torch_when_a_package_wants_another(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    plan = _plan(bundle, package_index, ["tinypkg==1.0"])
    build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    env = runtime_env(bundle)
    uv = uv_bin()
    assert uv is not None
    run_env = installer_env(env_for(bundle, tmp_path))
    base = [str(uv), "pip", "install", "--no-config", "--python", str(env_python(env)), "--default-index",
            package_index.simple_url(), "--constraint", str(env / "yijian-constraints.txt")]  # fmt: skip
    ok = subprocess.run([*base, "needs-torch"], env=run_env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert state.installed(env)["torch"] == "2.7.1+cu128"  # PyPI's 2.9.0 did not replace it
    refused = subprocess.run([*base, "needs-new-torch"], env=run_env, capture_output=True, text=True)
    assert refused.returncode == 1 and "unsatisfiable" in refused.stderr
    assert state.installed(env)["torch"] == "2.7.1+cu128"


def test_a_failed_rebuild_leaves_the_working_environment_in_use(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    good = build(
        bundle,
        _plan(bundle, package_index, ["tinypkg==1.0"]),
        base_env=env_for(bundle, tmp_path),
        on_event=lambda e: None,
    )
    broken = _plan(bundle, package_index, ["tinypkg==1.0", "no-such-package==1.0"])
    with pytest.raises(EnvironmentBuildFailed) as info:
        build(bundle, broken, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert info.value.params["step"] == "runtime" and "no-such-package" in info.value.message("en")
    assert "setup-" in info.value.hint("en")
    assert "Diagnosis: A package is missing from the source in use" in info.value.hint("en")
    assert "诊断：所用的源里找不到某个依赖包" in info.value.hint("zh")
    env = runtime_env(bundle)
    assert state.read_stamp(env) == good and state.installed(env)["tinypkg"] == "1.0"
    assert not env.with_name("runtime.new").exists()


def test_the_self_check_refuses_a_torch_without_the_packs_cuda(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    plan = make_plan(bundle, pack("cu128"), ["torch==2.7.1+cpu"], ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                     src("torch", package_index.simple_url("cpu")))  # fmt: skip
    with pytest.raises(EnvironmentBuildFailed) as info:
        build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert info.value.params["step"] == "check" and "the pack needs 12.8" in info.value.message("en")
    assert not runtime_env(bundle).exists()


def test_an_unreachable_pypi_mirror_falls_back_to_the_next_and_is_remembered(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    from launcher.mirrors import ranking
    from tests.support.httpbase import free_port

    dead = Source("pypi", "tuna", f"http://127.0.0.1:{free_port()}/simple", "pep503", "清华", "TUNA")
    plan = make_plan(bundle, pack("cu128"), CU128, ["tinypkg==1.0"], dead, src("torch", package_index.simple_url("cu128")),
                     alternates={"pypi": [src("pypi", package_index.simple_url())]})  # fmt: skip
    said: list[str] = []
    build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: said.append(e.en))
    assert state.installed(runtime_env(bundle))["tinypkg"] == "1.0"
    switch = [s for s in said if s.startswith("mirror TUNA failed")]
    assert len(switch) == 1 and "connection refused" in switch[0]
    assert "tuna" in ranking.load(bundle).failures["pypi"]


def test_killing_setup_during_the_torch_download_and_running_it_again_continues(
    bundle: Bundle,
    package_index: PackageIndex,
    file_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    import hashlib
    import signal
    import time

    from tests.support.wheels import fake_torch

    MiB = 1024 * 1024
    wheel = fake_torch(tmp_path / "w", "2.7.1+cpu", cuda=None, pad_to=12 * MiB)
    data = wheel.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    file_server.add(f"/flat/{wheel.name}", data).faults.throttle = 512 * 1024  # 8 connections: about 3 s in all
    file_server.add(
        "/flat/", f'<html><body><a href="{wheel.name}#sha256={sha}">{wheel.name}</a></body></html>'.encode()
    )
    flat = file_server.url_for("/flat/")
    code = f"""
import sys, types
from pathlib import Path
from bootstrap.builder.build import build, make_plan
from bootstrap.layout import Bundle, bundle_environ
from launcher.mirrors.sources import Source
b = Bundle(root=Path({str(bundle.root)!r}))
pack = types.SimpleNamespace(id="test-cpu", python={PY!r}, torch="2.7.1+cpu", torchvision="", cuda="cpu")
plan = make_plan(b, pack, ["torch==2.7.1+cpu"], ["tinypkg==1.0"], Source("pypi", "p", {package_index.simple_url()!r}, "pep503", "p", "p"),
                 Source("torch", "t", {flat!r}, "flat", "t", "t"))
build(b, plan, base_env=bundle_environ(b), on_event=lambda e: None)
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    journal = bundle.cache_dir / "wheels" / f"{wheel.name}.part.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and sum(
            int(b) - int(a) for a, b in (ln.split() for ln in journal.read_text().splitlines() if ln)
        ) > 0.9 * len(data):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "setup ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not runtime_env(bundle).exists()
    file_server.wait_idle()
    before = file_server.bytes_served(f"/flat/{wheel.name}")
    file_server.faults(f"/flat/{wheel.name}").throttle = None
    plan = make_plan(bundle, pack("cpu"), ["torch==2.7.1+cpu"], ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                     src("torch", flat, "flat"))  # fmt: skip
    build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert state.installed(runtime_env(bundle))["torch"] == "2.7.1+cpu"
    file_server.wait_idle()
    again = file_server.bytes_served(f"/flat/{wheel.name}") - before
    assert again < 0.2 * len(data)  # it continued from about 90 %, it did not start over


def test_repair_reinstalls_the_matching_xformers(bundle: Bundle, package_index: PackageIndex, tmp_path: Path) -> None:
    from bootstrap.builder.build import repair
    from tests.support.wheels import fake_xformers

    plan = _plan(bundle, package_index, ["tinypkg==1.0"])
    build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    env = runtime_env(bundle)
    # An extension swapped in an xformers built for another torch: the real-world warning appears.
    wrong = fake_xformers(tmp_path / "wrong", "0.0.31", built_for_torch="2.7.1+cu126")
    uv = uv_bin()
    assert uv is not None
    subprocess.run([str(uv), "pip", "install", "--no-config", "--python", str(env_python(env)), "--no-deps", "--reinstall",
                    str(wrong)], env=installer_env(env_for(bundle, tmp_path)), check=True, capture_output=True)  # fmt: skip
    probe = [str(env_python(env)), "-c", "import xformers"]
    assert "xFormers was built for" in subprocess.run(probe, capture_output=True, text=True).stderr
    steps: list[str] = []
    repair(bundle, plan, "xformers", base_env=env_for(bundle, tmp_path), on_event=lambda e: steps.append(e.step))
    assert steps[-3:] == ["check", "swap", "done"]
    assert subprocess.run(probe, capture_output=True, text=True).stderr == ""
    assert state.read_stamp(env)["repaired"] == "xformers" and state.installed(env)["torch"] == "2.7.1+cu128"


def test_repairing_an_environment_that_is_not_a_venv_rebuilds_it(bundle: Bundle, package_index: PackageIndex,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    """A cross-installed env (a copy of the embeddable Python, no pyvenv.cfg) cannot be updated in place."""
    from bootstrap.builder.build import repair

    plan = _plan(bundle, package_index, ["tinypkg==1.0"])
    build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    env = runtime_env(bundle)
    (env / "pyvenv.cfg").unlink()
    steps: list[str] = []
    repair(bundle, plan, "xformers", base_env=env_for(bundle, tmp_path), on_event=lambda e: steps.append(e.step))
    assert "venv" in steps and steps[-1] == "done" and (env / "pyvenv.cfg").exists()
    assert "repaired" not in state.read_stamp(env) and state.installed(env)["torch"] == "2.7.1+cu128"


def test_an_environment_on_the_bundled_python_survives_moving_the_bundle(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    import shutil

    base = Path(sys.base_prefix)
    bundled = bundle.python_dir
    # A bundled interpreter: this Python's installation, hard-linked (cheap) into the bundle's python/.
    if subprocess.run(["cp", "-al", str(base), str(bundled)], capture_output=True).returncode != 0:
        pytest.skip(f"cannot hard-link {base} into the test folder (another file system)")
    plan = _plan(bundle, package_index, ["tinypkg==1.0"])
    assert plan.python is not None and plan.python.source == "bundled"
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert stamp["python_rel"].startswith("python/")
    link = runtime_env(bundle) / "bin" / "python"
    assert not os.readlink(link).startswith("/")  # relative: it moves with the bundle
    moved_root = tmp_path / "moved" / "bundle"
    moved_root.parent.mkdir()
    shutil.move(str(bundle.root), str(moved_root))
    moved = Bundle(root=moved_root)
    again = _plan(moved, package_index, ["tinypkg==1.0"])  # heals pyvenv.cfg, then finds nothing to do
    assert again.noop
    cfg = (runtime_env(moved) / "pyvenv.cfg").read_text()
    assert f"home = {moved_root / 'python' / 'bin'}\n" in cfg
    out = subprocess.run([str(env_python(runtime_env(moved))), "-c", "import sys, tinypkg; print(sys.prefix)"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == str(runtime_env(moved)), out.stderr


def test_a_missing_python_is_installed_through_the_python_mirror(
    bundle: Bundle,
    package_index: PackageIndex,
    file_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from launcher.errors import NoPythonForPack

    wanted = types.SimpleNamespace(id="test-py", python="3.9", torch="2.7.1+cpu", torchvision="", cuda="cpu")
    plan = make_plan(bundle, wanted, ["torch==2.7.1+cpu"], [], src("pypi", package_index.simple_url()),
                     src("torch", package_index.simple_url("cpu")), look_up_wheels=False)  # fmt: skip
    if plan.python is not None:
        pytest.skip("this machine has a usable Python 3.9 on PATH")
    env = env_for(bundle, tmp_path)
    env["UV_PYTHON_INSTALL_MIRROR"] = (
        file_server.url + "/pbs"
    )  # the python channel's mirror (a stand-in that has nothing)
    with pytest.raises(NoPythonForPack) as info:
        build(bundle, plan, base_env=env, on_event=lambda e: None)
    assert "python/ folder" in info.value.hint("en")
    file_server.wait_idle()
    asked = [r.path for r in file_server.requests]
    assert any(p.startswith("/pbs/") and "cpython-3.9" in p for p in asked), asked
    assert not runtime_env(bundle).exists()


def test_with_bundled_python_a_system_python_is_never_the_silent_fallback(
    bundle: Bundle,
    package_index: PackageIndex,
    file_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from launcher.errors import BundledPythonUnavailable

    assert _plan(bundle, package_index, ["tinypkg==1.0"]).python.source == "system"  # one exists on this machine
    plan = make_plan(bundle, pack("cu128"), CU128, ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                     src("torch", package_index.simple_url("cu128")), python_setting="bundled")  # fmt: skip
    assert plan.python is None and plan.to_json()["python"]["source"] == "bundled"
    assert plan.to_json()["python"]["status"] == "to install" and "python/uv" in plan.to_json()["python"]["note"]
    env = env_for(bundle, tmp_path)
    env["UV_PYTHON_INSTALL_MIRROR"] = file_server.url + "/pbs"  # the python channel's mirror: a stand-in with nothing
    with pytest.raises(BundledPythonUnavailable) as info:
        build(bundle, plan, base_env=env, on_event=lambda e: None)
    file_server.wait_idle()
    assert any(r.path.startswith("/pbs/") for r in file_server.requests)  # it tried to put one in the bundle
    err = info.value
    assert err.exit_code == 6 and "uv python install failed" in err.message("en")
    assert "mirrors use python" in err.hint("en") and "cache/python/" in err.hint("en")
    assert "config set setup.python system" in err.hint("en") and "cannot be copied to another PC" in err.hint("en")
    assert "拷到别的电脑不能运行" in err.hint("zh")
    assert not runtime_env(bundle).exists()


# --- a pack's optional parts: left out where the torch channel lacks them, removed when they fail the self-check

BROKEN_VISION = "raise RuntimeError('operator torchvision::nms does not exist')\n"  # what a CUDA build does beside +cpu


def pack_with(cuda: str, optional: list[str]) -> types.SimpleNamespace:
    """A pack whose ``optional`` parts are ``optional`` (pins), as launcher.packs.catalog.Pack.optional_pins gives them."""
    return types.SimpleNamespace(id=f"test-{cuda}", python=PY, torch="2.7.1+" + cuda, torchvision="", cuda=cuda,
                                 optional_pins=lambda _os: list(optional))  # fmt: skip


def folder_with(tmp_path: Path, wheelhouse: Wheelhouse, variant: str, *extra: Path) -> Source:
    """A torch channel that is a local folder: the variant's torch (and its torchvision), plus ``extra``."""
    folder = tmp_path / f"torch-{variant}"
    folder.mkdir()
    for wheel in wheelhouse.variants[variant].glob("torch-*.whl"):
        shutil.copy2(wheel, folder)
    for wheel in extra:
        shutil.copy2(wheel, folder)
    return src("torch", str(folder), "local")


def test_an_optional_part_the_channel_lacks_is_left_out_and_said(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    torch = folder_with(tmp_path, wheelhouse, "cpu")  # torch only, like this machine's wheel folder
    plan = make_plan(bundle, pack_with("cpu", ["torchvision==0.28.0+cpu"]), ["torch==2.7.1+cpu"], ["tinypkg==1.0"],
                     src("pypi", package_index.simple_url()), torch)  # fmt: skip
    assert plan.pins == ["torch==2.7.1+cpu"] and plan.optional == []
    assert any("torchvision==0.28.0+cpu is not on" in n and "built without it" in n for n in plan.notes)
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert "torchvision" not in state.installed(runtime_env(bundle)) and stamp["dropped"] == {}


def test_an_optional_part_that_fails_the_self_check_is_removed_and_remembered(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    # xformers 0.0.35 built for another torch: it installs (its pin is the public 2.7.1) but warns at import.
    stranger = fake_xformers(tmp_path / "xf", "0.0.35", built_for_torch="2.7.1+cu126")
    torch = folder_with(tmp_path, wheelhouse, "cu128", stranger)
    wanted = pack_with("cu128", ["xformers==0.0.35"])
    plan = make_plan(bundle, wanted, ["torch==2.7.1+cu128"], ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                     torch)  # fmt: skip
    assert plan.pins == ["torch==2.7.1+cu128", "xformers==0.0.35"] and plan.optional == ["xformers==0.0.35"]
    events: list[str] = []
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: events.append(e.en))
    assert "xFormers was built for" in stamp["dropped"]["xformers==0.0.35"]
    assert any(e.startswith("xformers==0.0.35 failed the self-check") for e in events)
    have = state.installed(runtime_env(bundle))
    assert "xformers" not in have and have["torch"] == "2.7.1+cu128" and stamp["pins"] == ["torch==2.7.1+cu128"]
    again = make_plan(bundle, wanted, ["torch==2.7.1+cu128"], ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                      torch)  # fmt: skip
    assert again.noop and any("failed the self-check of the last build" in n for n in again.notes)


def test_a_required_part_that_fails_the_self_check_fails_the_build(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    broken = build_wheel(tmp_path / "tv", "torchvision", "0.28.0+cpu", files={"torchvision/__init__.py": BROKEN_VISION})
    torch = folder_with(tmp_path, wheelhouse, "cpu", broken)
    plan = make_plan(bundle, pack_with("cpu", []), ["torch==2.7.1+cpu", "torchvision==0.28.0+cpu"], ["tinypkg==1.0"],
                     src("pypi", package_index.simple_url()), torch)  # fmt: skip
    with pytest.raises(EnvironmentBuildFailed) as info:
        build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert info.value.params["step"] == "check" and "operator torchvision::nms does not exist" in info.value.message(
        "en"
    )
    assert not runtime_env(bundle).exists()


def test_an_optional_torchvision_that_does_not_import_is_removed(
    bundle: Bundle, package_index: PackageIndex, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    broken = build_wheel(tmp_path / "tv", "torchvision", "0.28.0+cpu", files={"torchvision/__init__.py": BROKEN_VISION})
    torch = folder_with(tmp_path, wheelhouse, "cpu", broken)
    plan = make_plan(bundle, pack_with("cpu", ["torchvision==0.28.0+cpu"]), ["torch==2.7.1+cpu"], ["tinypkg==1.0"],
                     src("pypi", package_index.simple_url()), torch)  # fmt: skip
    stamp = build(bundle, plan, base_env=env_for(bundle, tmp_path), on_event=lambda e: None)
    assert list(stamp["dropped"]) == ["torchvision==0.28.0+cpu"]
    assert "torchvision" not in state.installed(runtime_env(bundle))


def test_on_the_pypi_route_the_packs_optional_torchvision_stays_optional(
    bundle: Bundle, package_index: PackageIndex, tmp_path: Path
) -> None:
    from bootstrap.builder.build import _torch_from_pypi

    wanted = pack_with("cpu", [])
    wanted.optional = ("torchvision",)
    plan = make_plan(bundle, wanted, ["torch==2.7.1+cpu"], ["tinypkg==1.0"], src("pypi", package_index.simple_url()),
                     src("torch", package_index.simple_url("cpu")), pypi_pins=["torch==2.7.1", "torchvision==0.22.1"])  # fmt: skip
    constraints = tmp_path / "constraints.txt"
    spec = InstallSpec(plan.pypi, plan.torch, list(plan.pins), tmp_path / "runtime.txt", constraints)
    events: list[str] = []
    spec = _torch_from_pypi(bundle, plan, spec, [("NJU", "timed out")], lambda e: events.append(e.en), "en")
    assert plan.pins == ["torch==2.7.1", "torchvision==0.22.1"] and plan.optional == ["torchvision==0.22.1"]
    assert spec.torch is None and constraints.read_text().split() == plan.pins and "PyPI" in events[0]
