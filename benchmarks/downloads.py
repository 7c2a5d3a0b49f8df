"""Download speed: Yijian against aria2c, huggingface_hub and curl, and resume overhead.

One local server caps every connection (default 8 MiB/s), like a CDN or
mirror that limits each connection.  The same file (default 256 MiB) is
fetched by:

  - Yijian's engine with 8 connections (in-process, then the whole CLI);
  - ``aria2c -x8 -s8 -k1M`` (if installed);
  - ``huggingface_hub.hf_hub_download`` from a Hugging Face stand-in;
  - ``curl``, one stream.

Then a Yijian download is killed with SIGKILL at about 50 % and run again;
the server counts what it sent, so the re-fetched share is exact.

Goals: Yijian at least as fast as aria2c (>= 0.95 of the aggregate cap),
>= 6x the single stream, and a resume that re-fetches <= 1 % of the file.

    python benchmarks/downloads.py [--size-mib 256] [--rate-mib 8]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from launcher.downloads import DownloadSource, download  # noqa: E402
from tests.support.fileserver import FileServer  # noqa: E402
from tests.support.hf_endpoint import HfEndpoint  # noqa: E402

MiB = 1024 * 1024


def row(name: str, seconds: float, size: int, cap: float, single: float | None) -> str:
    rate = size / seconds / MiB
    vs = f"{single / seconds:5.1f}x" if single else "    -"
    return f"{name:34} {seconds:7.2f} s {rate:8.1f} MiB/s {100 * size / seconds / cap:6.1f} % of cap {vs}"


def timed(argv: list[str], **kw: object) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rate-mib", type=float, default=8.0)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    size, rate, conns = args.size_mib * MiB, int(args.rate_mib * MiB), args.connections
    cap = rate * conns
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    work = Path(tempfile.mkdtemp(prefix="yijian-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "YIJIAN_HOME": str(work / "home")}
    results: list[str] = []
    try:
        with FileServer() as srv:
            srv.add("/model.safetensors", data).faults.throttle = rate
            url = srv.url_for("/model.safetensors")
            print(f"{args.size_mib} MiB file, {args.rate_mib:g} MiB/s per connection, aggregate cap {cap / MiB:g} MiB/s "
                  f"with {conns} connections\n", flush=True)  # fmt: skip

            start = time.perf_counter()
            download([DownloadSource(url)], work / "a" / "m.safetensors", sha256=sha, connections=conns)
            engine = time.perf_counter() - start
            subprocess.run(
                [str(ROOT / "start.sh"), "--help"], env=env, check=True, stdout=subprocess.DEVNULL
            )  # first start
            cli = timed([str(ROOT / "start.sh"), "models", "download", url, "--sha256", sha, "--connections", str(conns),
                         "--to", str(work / "b"), "--json"], env=env)  # fmt: skip
            aria = None
            if shutil.which("aria2c"):
                aria = timed(["aria2c", "-q", f"-x{conns}", f"-s{conns}", "-k1M", "--file-allocation=none",
                              "-d", str(work / "c"), "-o", "m", url])  # fmt: skip
            curl = timed(["curl", "-s", "-o", str(work / "d"), url]) if shutil.which("curl") else None

            # Resume: kill -9 at about half, then the same command again.
            srv.reset_counts()
            cmd = [sys.executable, "-m", "launcher", "models", "download", url, "--sha256", sha, "--connections", str(conns),
                   "--to", str(work / "e"), "--json"]  # fmt: skip
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            part = work / "e" / "model.safetensors.part.log"
            while proc.poll() is None:
                done = 0
                if part.exists():
                    done = sum(
                        int(b) - int(a) for a, b in (ln.split() for ln in part.read_text().splitlines() if ln.strip())
                    )
                if done >= size // 2:
                    break
                time.sleep(0.01)
            if proc.poll() is not None:
                raise SystemExit("the download finished before it could be killed; use a bigger --size-mib")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            srv.wait_idle()
            refetched = srv.bytes_served("/model.safetensors") - size - 2  # two 1-byte size probes

        with HfEndpoint() as hf:
            hf.add_repo("bench/model", {"m.safetensors": data}, lfs=("m.safetensors",))
            hf.faults("bench/model", "m.safetensors").throttle = rate
            code = (
                "import sys, time; from huggingface_hub import hf_hub_download; t = time.perf_counter(); "
                "hf_hub_download('bench/model', 'm.safetensors', endpoint=sys.argv[1], cache_dir=sys.argv[2]); "
                "print(time.perf_counter() - t)"
            )
            hfenv = {**os.environ, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
            out = subprocess.run([sys.executable, "-c", code, hf.url, str(work / "hf")], env=hfenv, check=True,
                                 capture_output=True, text=True)  # fmt: skip
            hub = float(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    single = curl or hub
    results.append(row(f"yijian engine, {conns} connections", engine, size, cap, single))
    results.append(row(f"yijian CLI (./start.sh), {conns} conn.", cli, size, cap, single))
    if aria is not None:
        results.append(row(f"aria2c -x{conns} -s{conns} -k1M", aria, size, cap, single))
    results.append(row("huggingface_hub hf_hub_download", hub, size, cap, single))
    if curl is not None:
        results.append(row("curl, one stream", curl, size, cap, single))
    print("\n".join(results))
    print(
        f"\nresume after kill -9 at ~50 %: re-fetched {refetched / MiB:.2f} MiB = {100 * refetched / size:.2f} % of the file"
    )
    if aria is not None:
        print(f"yijian engine vs aria2c: {aria / engine:.2f}x aria2c's speed; CLI vs aria2c: {aria / cli:.2f}x")


if __name__ == "__main__":
    main()
