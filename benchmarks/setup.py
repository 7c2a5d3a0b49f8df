"""Setup speed: the CPU pack built with uv (Yijian) against pip used the way A1111 uses it.

A local PyPI mirror (the harness's package index over a folder holding the
runtime's wheels and their dependencies) and the local torch wheel folder
stand in for the network, with warm caches on both sides:

  - yijian: ``build()`` of a fresh ``env/runtime`` (uv venv, torch step, runtime step, self-check);
  - pip:    ``python -m venv`` + ``pip install torch`` + ``pip install -r runtime.txt``, as webui.sh does;
  - no-op:  the plan and build of an environment that already holds every pin, and the whole
            ``./start.sh setup --pack cpu`` command.

Goals: >= 10x faster than pip, and a no-op run <= 1 s.

    python benchmarks/setup.py [--torch-wheels /opt/wheels]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bootstrap.builder.build import build, make_plan, runtime_env  # noqa: E402
from bootstrap.layout import Bundle, bundle_environ  # noqa: E402
from launcher.mirrors.sources import Source  # noqa: E402
from launcher.packs.catalog import load_packs  # noqa: E402
from tests.support.pypi_index import PackageIndex  # noqa: E402


def wheel_folder(requirements: list[str], torch_pin: str, dest: Path, torch_wheels: Path) -> None:
    """Every wheel the runtime needs (with torch present, so nothing pulls another torch)."""
    if (dest / ".complete").exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "-q", "--only-binary=:all:", "-d", str(dest),
                    "--find-links", str(torch_wheels), torch_pin, *requirements], check=True, env=env)  # fmt: skip
    (dest / ".complete").write_text("ok")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-wheels", type=Path, default=Path(os.environ.get("PIP_FIND_LINKS", "/opt/wheels")))
    args = ap.parse_args()
    packs = load_packs(ROOT / "packs")
    pack = packs.require("cpu")
    pins, reqs = pack.pins("linux"), packs.runtime_requirements(pack)
    cache = ROOT / ".venv" / "test-cache" / "runtime-wheels"
    print("preparing the local mirror (first run downloads the wheels once) ...", flush=True)
    wheel_folder(reqs, pins[0], cache, args.torch_wheels)
    work = Path(tempfile.mkdtemp(prefix="yijian-setup-bench-"))
    try:
        with PackageIndex(root=cache) as index:
            pypi = Source("pypi", "local", index.simple_url(), "pep503", "local", "local")
            torch = Source("torch", "local", str(args.torch_wheels), "local", "local", "local")
            bundle = Bundle(root=work / "bundle")
            bundle.ensure_dirs()
            env = bundle_environ(bundle)
            quiet = lambda e: None  # noqa: E731
            build(
                bundle, make_plan(bundle, pack, pins, reqs, pypi, torch), base_env=env, on_event=quiet
            )  # warm uv's cache
            shutil.rmtree(runtime_env(bundle))
            start = time.perf_counter()
            build(bundle, make_plan(bundle, pack, pins, reqs, pypi, torch), base_env=env, on_event=quiet)
            uv_s = time.perf_counter() - start

            start = time.perf_counter()
            plan = make_plan(bundle, pack, pins, reqs, pypi, torch)
            build(bundle, plan, base_env=env, on_event=quiet)
            noop_s = time.perf_counter() - start
            assert plan.noop

            pip_env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
            pip_env["PIP_CACHE_DIR"] = str(work / "pip-cache")
            reqfile = work / "runtime.txt"
            reqfile.write_text("\n".join(reqs) + "\n")
            venv = work / "pipvenv"

            def a1111_way() -> float:
                shutil.rmtree(venv, ignore_errors=True)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                pip = [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--isolated",
                    "--disable-pip-version-check",
                ]
                subprocess.run([*pip, "--find-links", str(args.torch_wheels), pins[0]], check=True, env=pip_env)
                subprocess.run([*pip, "--index-url", index.simple_url(), "--trusted-host", "127.0.0.1", "-r", str(reqfile)],
                               check=True, env=pip_env)  # fmt: skip
                return time.perf_counter() - t

            a1111_way()  # warm pip's cache
            pip_s = a1111_way()

        print(f"CPU pack ({pins[0]} + {len(reqs)} runtime pins), local mirror, warm caches:")
        print(f"  yijian (uv):        {uv_s:6.1f} s")
        print(f"  pip (A1111's way):  {pip_s:6.1f} s   -> yijian is {pip_s / uv_s:.1f}x faster (goal >= 10x)")
        print(f"  no-op plan+build:   {noop_s:6.3f} s", flush=True)
        cfg = work / "bundle" / "config.toml"
        cfg.write_text(f'[mirrors]\ntorch = "{args.torch_wheels}"\n', encoding="utf-8")
        cli_env = {**os.environ, "YIJIAN_HOME": str(work / "bundle")}
        subprocess.run(
            [str(ROOT / "start.sh"), "--version"],
            env=cli_env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # the bundle's first start (env/launcher), not timed
        start = time.perf_counter()
        subprocess.run([str(ROOT / "start.sh"), "setup", "--pack", "cpu"], env=cli_env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        cli_noop = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"  no-op ./start.sh setup --pack cpu: {cli_noop:5.2f} s (goal <= 1 s)")


if __name__ == "__main__":
    main()
