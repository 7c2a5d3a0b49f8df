"""Chaos soak: one-click start from a fresh bundle, N times, each run through a random mix of broken mirrors.

The stand-in network of the test harness runs once per soak: the package index
(tests/support/pypi_index.py) as PyPI (the launcher's locked wheels, pip, the
runtime's wheels, and ``torch==2.13.0`` as PyPI names it: a copy of the CPU
wheel under the plain version, for the torch channel's PyPI route) and as the PyTorch index (``/whl/cpu``: the CPU torch
wheel of the machine's wheel folder), and the Hugging Face endpoint
(tests/support/hf_endpoint.py) holding the default model (the tiny SD 1.5
single file under the catalog's name) and the SD 1.5 config folder.  The
ModelScope stand-in (tests/support/modelscope_endpoint.py) is wired in when
that module exists; otherwise the ModelScope mirror stays dead and a note says so.

Every mirror the bundle may use is a fault-injecting proxy in front of a
stand-in (tests/support/chaos_proxy.py), two per channel; with ``--jobs J``
there are J such sets, each used by one run at a time (runs side by side, each
with its own bundle, proxies, port and kill timing, share no fault and no byte
count; a set keeps its URLs from run to run); every other mirror in
mirrors.toml points at a refused port.  Each run draws, from its own seed, one
fault or none per proxy (down, DNS failure, 403 to pip/uv, 5xx, HTML page with
200, LFS pointer, Xet redirect off the mirror, slow first byte, drop mid-file,
Range ignored; each mirror has a fault half the time) and, in a quarter of the
runs, a kill -9 of the launcher 1-60 s in (what it leaves running, uv or the
runtime, is killed a second later, as its process group), followed by the same
command again.  The default model is the harness's tiny random model built with
SD 1.5's cross-attention width (768), so the library and the runtime take it
for SD 1.5 as they would the real file.  The run is ``./start.sh --lang en start
--no-browser --port P`` in a fresh bundle copy, headless, sealed from the
machine (tests/support/hermetic.py).

After each run: the UI ready and a 64x64, 1-step image from /sdapi/v1/txt2img
("ready+image"); or the run ended with the right finding because a channel had
no working mirror (its error code names that channel's failure and never a
Python-version problem; or, for models, the UI came up without a model)
("right finding"); else "otherwise", with the run's output kept under the work
folder.  Then: files left corrupt under a final name (models and wheels
against the sha256 they were served with, the config folder against the
served bytes), environments left broken (a stamped env/runtime or env/launcher
that cannot import its packages), and bytes fetched more than once after a
kill (the proxies count every body byte per file and per program: uv, pip,
the launcher's downloader), listed file by file with who fetched them again.

Shared between runs, and why that hides no fault: the stand-in servers and
their wheel folders (read-only; every request still passes a proxy with that
run's faults), the tiny model (built once; served fresh each run), and the
wheel downloads from PyPI that fill the stand-in's folders (before the soak,
outside it).  uv's cache (cache/uv, a link to one folder of the soak): uv
keeps the wheels it fetched and unpacked there, which spares each run
unpacking the runtime's wheels again; the stand-in's index pages carry no
cache lifetime, so uv should ask the (faulty) proxy for them again (not
checked request by request), but a
wheel body uv fetched in an earlier run is not fetched again (each job's
proxy set keeps its URLs from run to run, as the serial soak's one set did,
so a cache entry made through one URL serves the later runs): the file faults
on PyPI reach stage 0's pip (its own cache per bundle) and the launcher's torch
download, not uv's runtime wheels.  Nothing
else the bundle writes is shared: each run has its own bundle, its own pip and
Hugging Face caches, and its own HOME.
Not covered (said in the closing note): the Python-builds channel and the
GitHub proxies (this flow takes the system Python, ``setup.python = "system"``,
so neither is used).

    python benchmarks/chaos.py -n 100 [--jobs J] [--seed S] [--work DIR] [--json FILE] [--keep]

The goal printed beside the figures: >= 99 % of 100 runs end ready or with the
right finding; 0 corrupt files; 0 broken environments.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.chaos_network import (  # noqa: E402
    CHANNELS,
    MIRRORS,
    Network,
    Proxies,
    Refetch,
    prepare_bundle,
    refetches,
    sent_by_file,
    sha256_of,
    start_network,
)
from tests.support.chaos_proxy import FAULTS  # noqa: E402
from tests.support.hermetic import MACHINE_WHEELS, sealed_env_dict  # noqa: E402
from tests.support.httpbase import free_port  # noqa: E402

# Which faults leave a mirror unusable for a channel (the launcher must move on); the rest must be ridden out.
FATAL = {
    "pypi": {"down", "dns", "ua403", "5xx", "html200", "lfs", "xet"},
    "torch": {"down", "dns", "5xx", "html200", "lfs", "xet"},  # ua403: the launcher's own downloads get through
    "huggingface": {"down", "dns", "5xx", "html200", "lfs", "xet"},
}
# The error codes that are right when a channel has no working mirror (today's codes; a code added for one of these
# failures belongs here too).
RIGHT_CODES = {
    "pypi": {"LAUNCHER_ENV_FAILED", "ENV_BUILD_FAILED", "MIRRORS_ALL_FAILED"},
    "torch": {"ENV_BUILD_FAILED", "MIRRORS_ALL_FAILED", "DOWNLOAD_FAILED", "DOWNLOAD_WRONG_CONTENT",
              "DOWNLOAD_CHECKSUM_MISMATCH", "TORCH_NO_ROUTE"},
    "huggingface": {"DOWNLOAD_FAILED", "DOWNLOAD_WRONG_CONTENT", "DOWNLOAD_CHECKSUM_MISMATCH", "MIRRORS_ALL_FAILED"},
}  # fmt: skip
NEVER_RIGHT = {"PYTHON_VERSION_UNSUPPORTED"}
CODE = re.compile(r"\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b")
KILL_P = 0.25  # share of runs with a kill -9
FAULT_P = 0.5  # chance that a mirror gets a fault
RUN_TIMEOUT = 420.0
GOAL = ">= 99 % of 100 runs end ready or with the right finding; 0 corrupt files; 0 broken environments"
OUTCOMES = ("ready+image", "right finding", "otherwise")


# ------------------------------------------------------------------------------------------------ one run


@dataclass
class Draw:
    """What one run suffers: a fault (or None) per proxy, and when to kill the launcher (or never)."""

    faults: dict[str, list[str | None]]
    kill_at: float | None

    @classmethod
    def make(cls, rng: random.Random, mirrors: dict[str, tuple[str, ...]] = MIRRORS) -> Draw:
        """One run's draw; ``mirrors`` (mirror ids per channel) is the network's (ModelScope adds one)."""
        faults = {ch: [rng.choice(FAULTS) if rng.random() < FAULT_P else None for _ in mirrors[ch]]
                  for ch in CHANNELS}  # fmt: skip
        kill_at = rng.uniform(1.0, 60.0) if rng.random() < KILL_P else None
        return cls(faults, kill_at)

    def kinds(self) -> set[str]:
        out = {f for fs in self.faults.values() for f in fs if f}
        if self.kill_at is not None:
            out.add("kill -9")
        return out

    def dead(self) -> list[str]:
        """The channels with no working mirror this run."""
        return [ch for ch in CHANNELS if all(f in FATAL[ch] for f in self.faults[ch])]

    def describe(self) -> str:
        parts = [f"{ch}=" + ",".join(f or "ok" for f in fs) for ch, fs in self.faults.items()]
        if self.kill_at is not None:
            parts.append(f"kill -9 at {self.kill_at:.1f} s")
        return " ".join(parts)


@dataclass
class Result:
    n: int
    draw: Draw
    outcome: str
    why: str
    seconds: float
    corrupt: list[str]
    broken: list[str]
    refetched: list[Refetch]
    log: Path | None

    @property
    def refetched_bytes(self) -> int:
        return sum(f.bytes for f in self.refetched)


Started = tuple[str | None, str, "subprocess.Popen[bytes]"]


def remove(folder: Path) -> None:
    """Delete a run's folder (tens of thousands of files): ``rm -rf`` where there is one, several times faster."""
    rm = shutil.which("rm")
    if rm is not None and folder.exists():
        subprocess.run([rm, "-rf", "--", str(folder)], check=False, stdin=subprocess.DEVNULL)
    shutil.rmtree(folder, ignore_errors=True)


def run_once(bundle: Path, env: dict[str, str], port: int, log: Path, kill_at: float | None,
             timeout: float = RUN_TIMEOUT) -> Started:  # fmt: skip
    """One ``./start.sh start``; returns the UI's URL (or None), what happened, and the process."""
    argv = [str(bundle / "start.sh"), "--lang", "en", "start", "--no-browser", "--port", str(port)]
    with open(log, "ab") as out:
        out.write(f"\n===== {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, cwd=bundle, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    started = time.monotonic()
    url: str | None = None
    try:
        while True:
            time.sleep(0.2)
            text = log.read_text(encoding="utf-8", errors="replace")
            m = re.search(r"Generation UI: (http://\S+)", text)
            if m:
                url = m.group(1).rstrip("/")
            elapsed = time.monotonic() - started
            if kill_at is not None and elapsed >= kill_at and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                time.sleep(1.0)
                _kill_group(proc.pid)  # what the launcher's death leaves (uv, pip, the runtime) goes with it
                return None, f"killed at {elapsed:.1f} s", proc
            if url is not None:
                return url, "ready", proc
            if proc.poll() is not None:
                return None, f"exit {proc.returncode}", proc
            if elapsed > timeout:
                return None, f"no ready line in {timeout:.0f} s", proc
    finally:
        if url is None and proc.poll() is None:
            _kill_group(proc.pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C: the launcher stops the runtime
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc.pid)


def txt2img(url: str) -> str | None:
    """None when a PNG came back, else why not."""
    body = json.dumps({"prompt": "a cat", "seed": 7, "steps": 1, "width": 64, "height": 64}).encode()
    req = urllib.request.Request(f"{url}/sdapi/v1/txt2img", data=body, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=180) as resp:
            png = base64.b64decode(json.load(resp)["images"][0])
    except Exception as exc:
        detail = exc.read().decode(errors="replace")[:300] if hasattr(exc, "read") else ""
        return f"txt2img failed: {exc} {detail}".strip()
    return None if png[:8] == b"\x89PNG\r\n\x1a\n" else "txt2img answered something that is not a PNG"


def corrupt_files(bundle: Path, net: Network) -> list[str]:
    """Files under a final name whose bytes are not what was served."""
    bad: list[str] = []
    for folder in (bundle / "models", bundle / "cache" / "wheels"):
        for f in folder.rglob("*") if folder.exists() else ():
            if not f.is_file() or f.name.startswith(".") or f.suffix in (".part", ".partial", ".toml", ".json"):
                continue
            want = net.served.get(f.name)
            if want is None:
                if f.suffix in (".safetensors", ".ckpt", ".whl"):
                    bad.append(f"{f.relative_to(bundle)} (not a file the network served)")
                continue
            if sha256_of(f) != want:
                bad.append(f"{f.relative_to(bundle)} (sha256 differs from the one served)")
    configs = bundle / "cache" / "configs" / "sd15"
    if (configs / ".complete").exists():
        for rel, data in net.config_files.items():
            p = configs / rel
            if not p.exists() or p.read_bytes() != data:
                bad.append(f"cache/configs/sd15/{rel} (not the served bytes)")
    return bad


def broken_envs(bundle: Path, env: dict[str, str], image_made: bool) -> list[str]:
    """Stamped (complete) environments that cannot import what they hold."""
    broken = []
    checks = {"launcher": "import textual, requests, huggingface_hub, tomlkit, tqdm",
              "runtime": "import torch, diffusers, transformers, gradio, runtime.engine"}  # fmt: skip
    for name, code in checks.items():
        folder = bundle / "env" / name
        if not (folder / "yijian-env.json").exists() or (name == "runtime" and image_made):
            continue  # not complete by its own stamp, or proven by the image it made
        py = folder / "bin" / "python"
        run_env = {**env, "PYTHONPATH": str(bundle)}
        try:
            r = subprocess.run([str(py), "-c", code], cwd=bundle, env=run_env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
            ok, why = r.returncode == 0, (r.stderr.strip().splitlines() or ["?"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, why = False, str(exc)
        if not ok:
            broken.append(f"env/{name}: {why}")
    return broken


def judge(draw: Draw, url: str | None, how: str, image: str | None, output: str, bundle: Path) -> tuple[str, str]:
    dead = draw.dead()
    codes = set(CODE.findall(output))
    if url is not None and image is None:
        return "ready+image", "ready, image generated"
    if codes & NEVER_RIGHT:
        return "otherwise", f"diagnosed as {sorted(codes & NEVER_RIGHT)} ({how})"
    if url is not None:
        no_model = not any((bundle / "models" / "Stable-diffusion").glob("*.safetensors"))
        if "huggingface" in dead and no_model:
            return "right finding", "no model route: the UI came up without a model"
        return "otherwise", f"ready, but {image}"
    right = set().union(*(RIGHT_CODES[ch] for ch in dead)) if dead else set()
    if codes & right:
        return "right finding", f"{', '.join(sorted(codes & right))} with no route on {', '.join(dead)}"
    return "otherwise", f"{how}; codes seen: {', '.join(sorted(codes)) or 'none'}; channels dead: {dead or 'none'}"


def soak_run(n: int, seed: int, net: Network, proxies: Proxies, work: Path, keep: bool,
             timeout: float = RUN_TIMEOUT) -> Result:  # fmt: skip
    """Run ``n`` of the soak through ``proxies``, which no other run uses meanwhile (no shared fault or byte count)."""
    rng = random.Random(f"{seed}:{n}")
    draw = Draw.make(rng, net.mirrors)
    base = work / f"run-{n:03d}"
    remove(base)
    _, env = sealed_env_dict(base / "sealed")
    env.pop("YIJIAN_HOME", None)  # the bundle is its own root
    bundle = prepare_bundle(base / "bundle", net, proxies, draw.faults, work / "uv-cache")
    log = base / "output.log"
    port = free_port()
    started = time.monotonic()
    url, how, proc = run_once(bundle, env, port, log, draw.kill_at, timeout)
    refetched: list[Refetch] = []
    if draw.kill_at is not None and how.startswith("killed"):
        time.sleep(0.5)  # what the proxies were still writing into the dead sockets is counted as sent before
        before = sent_by_file(proxies)
        url, how, proc = run_once(bundle, env, port, log, None, timeout)  # the same command again
        refetched = refetches(before, sent_by_file(proxies))
    image = txt2img(url) if url else None
    stop(proc)
    seconds = time.monotonic() - started
    output = log.read_text(encoding="utf-8", errors="replace")
    outcome, why = judge(draw, url, how, image, output, bundle)
    corrupt = corrupt_files(bundle, net)
    broken = broken_envs(bundle, env, outcome == "ready+image" and url is not None)
    kept: Path | None = log
    if outcome != "otherwise" and not keep:
        remove(base)
        kept = None
    elif not keep:
        remove(bundle / "env")  # the log stays; the environment is large
    return Result(n, draw, outcome, why, seconds, corrupt, broken, refetched, kept)


# ------------------------------------------------------------------------------------------------ the report


def table(results: list[Result]) -> list[str]:
    rows: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        kinds = r.draw.kinds() or {"no fault"}
        for k in kinds:
            rows[k].append(r)
    order = ["no fault", *FAULTS, "kill -9"]
    head = f"{'fault kind':<12} {'runs':>5} {'ready+image':>12} {'right finding':>14} {'otherwise':>10} " \
           f"{'corrupt':>8} {'broken env':>11} {'re-fetched':>12}"  # fmt: skip
    lines = [head, "-" * len(head)]

    def row(label: str, rs: list[Result]) -> str:
        c = {o: sum(r.outcome == o for r in rs) for o in OUTCOMES}
        return (f"{label:<12} {len(rs):>5} {c['ready+image']:>12} {c['right finding']:>14} {c['otherwise']:>10} "
                f"{sum(len(r.corrupt) for r in rs):>8} {sum(len(r.broken) for r in rs):>11} "
                f"{_mib(sum(r.refetched_bytes for r in rs)):>12}")  # fmt: skip

    for k in order:
        if rows.get(k):
            lines.append(row(k, rows[k]))
    lines.append("-" * len(head))
    lines.append(row("total", results))
    return lines


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


@dataclass
class Report:
    seed: int
    results: list[Result]
    notes: list[str]
    mirrors: dict[str, tuple[str, ...]]
    jobs: int = 1
    wall: float = 0.0  # seconds the whole soak took (0: not finished)
    planned: int = 0  # runs asked for (a report written while the soak runs has fewer results)

    @property
    def good(self) -> int:
        return sum(r.outcome != "otherwise" for r in self.results)

    def lines(self) -> list[str]:
        rs = self.results
        n = len(rs)
        secs = [r.seconds for r in rs]
        out = [f"chaos soak: {n} runs, seed {self.seed} (replay: --seed {self.seed} -n {n}; "
               f"{self.jobs} at a time)", *table(rs)]  # fmt: skip
        share = 100.0 * self.good / n if n else 0.0
        out.append(f"ready or right finding: {self.good}/{n} = {share:.1f} %; corrupt files: "
                   f"{sum(len(r.corrupt) for r in rs)}; broken environments: {sum(len(r.broken) for r in rs)}")  # fmt: skip
        if secs:
            out.append(f"seconds per run: mean {sum(secs) / n:.1f}, min {min(secs):.1f}, max {max(secs):.1f}"
                       f" ({self.jobs} at a time; the soak took {self.wall / 60:.1f} min)")  # fmt: skip
        out.extend(refetch_lines(rs))
        out.append(f"goal: {GOAL}")
        met = n >= 100 and share >= 99.0 and not any(r.corrupt or r.broken for r in rs)
        out.append("goal met" if met else ("goal NOT met" if n >= 100 else f"goal not judged: {n} runs < 100"))
        for r in rs:
            if r.outcome == "otherwise" or r.corrupt or r.broken:
                out.append(f"  run {r.n}: {r.outcome}: {r.why} [{r.draw.describe()}]"
                           + (f" log: {r.log}" if r.log else ""))  # fmt: skip
                out.extend(f"    corrupt: {c}" for c in r.corrupt)
                out.extend(f"    broken: {b}" for b in r.broken)
        out.extend(f"note: {note}" for note in self.notes)
        return out

    def to_dict(self) -> dict[str, object]:
        """The figures as data (``--json``), one entry per run."""
        runs = [{"n": r.n, "faults": r.draw.faults, "kill_at": r.draw.kill_at, "dead": r.draw.dead(),
                 "outcome": r.outcome, "why": r.why, "seconds": round(r.seconds, 1), "corrupt": r.corrupt,
                 "broken": r.broken, "refetched": r.refetched_bytes,
                 "refetched_files": [{"channel": f.channel, "path": f.path, "size": f.size, "bytes": f.bytes,
                                      "by": list(f.by)} for f in r.refetched],
                 "log": str(r.log) if r.log else None}
                for r in self.results]  # fmt: skip
        totals = {o: sum(r.outcome == o for r in self.results) for o in OUTCOMES}
        return {
            "seed": self.seed,
            "jobs": self.jobs,
            "planned": self.planned or len(self.results),
            "finished": self.wall > 0,
            "wall_seconds": round(self.wall, 1),
            "mirrors": self.mirrors,
            "runs": runs,
            "totals": totals,
            "goal": GOAL,
            "notes": self.notes,
        }


def refetch_lines(results: list[Result]) -> list[str]:
    """Bytes fetched twice after kills: in all, per program, and per file (run by run)."""
    files = [(r.n, f) for r in results for f in r.refetched]
    if not files:
        return ["re-fetched after kills: nothing"]
    per: dict[str, int] = defaultdict(int)
    for _, f in files:
        per["+".join(f.by) or "?"] += f.bytes
    whom = ", ".join(f"{who} {_mib(b)}" for who, b in sorted(per.items(), key=lambda kv: -kv[1]))
    out = [f"re-fetched after kills: {_mib(sum(f.bytes for _, f in files))} in {len(files)} files; by program: {whom}"]
    out.extend(f"  run {n}: {f.describe()}" for n, f in files)
    return out


def soak(n: int, seed: int, work: Path, *, keep: bool = False, say: Callable[[str], None] = print,
         torch_wheels: str = MACHINE_WHEELS, jobs: int = 1, on_result: Callable[[Report], None] | None = None,
         only: list[int] | None = None) -> Report:  # fmt: skip
    """``n`` runs, ``jobs`` at a time (each with its own bundle, proxies, port and kill timing).

    ``only`` replays just those run numbers of the seed (each draws what it drew in the whole soak).
    ``on_result`` gets the report so far after every run (to write it while the soak goes on).  With several jobs a
    run's kill -9 still comes at its drawn second after its own start; the machine is busier, so each run is slower,
    and the run timeout grows with ``jobs`` so that a slow run is not taken for a hung one.
    """
    (work / "uv-cache").mkdir(parents=True, exist_ok=True)
    numbers = list(only) if only is not None else list(range(n))
    n = len(numbers)
    say(f"chaos soak: {n} runs, seed {seed}, {jobs} at a time, work folder {work}"
        + (f" (only runs {', '.join(map(str, numbers))})" if only is not None else ""))  # fmt: skip
    net = start_network(work, say, torch_wheels)
    timeout = RUN_TIMEOUT * max(1, jobs)
    results: list[Result] = []
    lock = threading.Lock()
    started = time.monotonic()
    # One set of proxies per job, each used by one run at a time: a mirror keeps its URL from run to run, as in a
    # serial soak, so uv's shared cache (keyed by index URL) spares the runtime's wheels as it did there.
    free: queue.Queue[Proxies] = queue.Queue()
    for _ in range(max(1, jobs)):
        free.put(net.start_proxies())

    def one(i: int) -> None:
        proxies = free.get()
        try:
            r = soak_run(i, seed, net, proxies, work, keep, timeout)
        finally:
            free.put(proxies)
        with lock:
            results.append(r)
            results.sort(key=lambda x: x.n)
            say(f"run {i}: {r.outcome} in {r.seconds:.0f} s: {r.why} [{r.draw.describe()}]")
            if on_result is not None:
                on_result(Report(seed, list(results), net.notes, net.mirrors, jobs, 0.0, n))

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(one, i) for i in numbers]:
                future.result()  # a harness error ends the soak loudly
    finally:
        while not free.empty():
            for group in free.get().values():
                for proxy in group:
                    proxy.stop()
        net.stop()
    return Report(seed, results, net.notes, net.mirrors, jobs, time.monotonic() - started, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100, help="runs (default 100)")
    ap.add_argument("--seed", type=int, default=None, help="replay a soak (default: a new random seed)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary folder)")
    ap.add_argument("--torch-wheels", default=MACHINE_WHEELS,
                    help="folder holding torch-2.13.0+cpu (default: PIP_FIND_LINKS)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=None,
                    help="also write the figures as JSON to this file (rewritten after every run)")  # fmt: skip
    ap.add_argument("--jobs", "-j", type=int, default=1, help="runs at a time (default 1)")
    ap.add_argument("--only", type=int, nargs="+", default=None, metavar="RUN",
                    help="replay only these run numbers of --seed (e.g. the runs that ended otherwise)")  # fmt: skip
    ap.add_argument(
        "--keep", action="store_true", help="keep every run's bundle (default: only those that ended otherwise)"
    )
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    work = args.work or Path(tempfile.mkdtemp(prefix="yijian-chaos-"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: give 1 or more runs at a time")

    def write(report: Report) -> None:
        if args.json:
            tmp = args.json.with_name(args.json.name + ".tmp")
            tmp.write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, args.json)

    report = soak(args.n, seed, work, keep=args.keep, say=lambda s: print(s, flush=True),
                  torch_wheels=args.torch_wheels, jobs=args.jobs, on_result=write, only=args.only)  # fmt: skip
    print("\n".join(report.lines()), flush=True)
    write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
