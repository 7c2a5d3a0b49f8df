"""A stand-in for ``nvidia-smi`` that replays recorded machines (this machine has no GPU).

Each recording in ``tests/support/data/gpus/<name>.toml`` holds the facts of one real machine: OS, driver and
CUDA versions, and per GPU the name exactly as nvidia-smi prints it, UUID, PCI bus id, memory, compute capability,
power/temperature fields.  :func:`install_fake_nvidia_smi` writes a ``#!/bin/sh`` launcher named ``nvidia-smi``
that runs this file with the test interpreter and the recording; the stub then answers like the real tool:

* no arguments: the summary table, in the layout of that driver generation (79 columns before R530, 89 for
  R530-R544, 91 from R545; from R610 the header reads ``KMD Version`` and ``CUDA UMD Version``; Windows shows
  ``TCC/WDDM``/``Driver-Model`` where Linux shows ``Persistence-M``);
* ``-L``: ``GPU 0: NAME (UUID: GPU-...)``;  ``-q``: a subset of the detailed report;
* ``--query-gpu=a,b --format=csv[,noheader][,nounits]`` for the fields in :data:`FIELDS` (aliases such as
  ``gpu_name`` print the canonical header).  Any other field - and ``compute_cap`` before driver 510 - gets the
  real error on stdout, ``Field "X" is not a valid field to query.``, exit 2;
* ``-i``/``--id`` selects GPUs by index, UUID or bus id (``No devices were found``, exit 6).

Windows recordings end lines with CRLF like nvidia-smi.exe.  Special recordings have a ``mode``: ``absent``
(nothing is installed: the fixture hides nvidia-smi instead), ``driver-not-loaded`` (exit 9),
``driver-mismatch`` (NVML version mismatch, exit 18) and ``hang`` (sleeps, for the probe's timeout).
Only the standard library is used: the stub runs with ``python -I -S``.  Exact header lines, CSV and error
texts follow real output; spacing of the processes section, the -q label width and the wording for unusual
argument combinations are close approximations.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomllib  # Python 3.11+, like the dev venv

DATA = Path(__file__).resolve().parent / "data" / "gpus"
RECORDINGS: tuple[str, ...] = tuple(sorted(p.stem for p in DATA.glob("*.toml")))
MODES = ("ok", "absent", "driver-not-loaded", "driver-mismatch", "hang")
COMPUTE_CAP_SINCE = 510  # first driver branch whose --query-gpu knows compute_cap (470.x does not)
HANG_SECONDS = 600

DRIVER_NOT_LOADED = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
INVALID_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."
NO_DEVICES = "No devices were found"


@dataclass(frozen=True)
class Gpu:
    """One GPU as the recording saw it."""

    index: int
    name: str
    uuid: str
    pci_bus_id: str
    architecture: str
    brand: str
    compute_cap: str  # "8.6": what compute_cap prints (and torch's get_device_capability)
    memory_total_mib: int
    memory_used_mib: int
    temperature_c: int
    perf_state: str
    power_draw_w: float
    power_limit_w: float
    utilization_percent: int
    display_mode: bool
    display_active: bool
    fan_percent: int | None = None  # None: N/A (laptops, passive datacenter cards)
    driver_model: str | None = None  # "WDDM"/"TCC" on Windows
    persistence_mode: bool | None = None  # Linux only
    ecc: str = "N/A"  # volatile uncorrectable ECC errors ("0" with ECC on)
    mig_mode: str = "N/A"
    compute_mode: str = "Default"
    memory_reserved_mib: int = 0  # drivers >= 510 keep some memory back ("Reserved" in -q)

    @property
    def memory_free_mib(self) -> int:
        """``memory.free``: drivers >= 510 also subtract the reserved amount."""
        return self.memory_total_mib - self.memory_reserved_mib - self.memory_used_mib

    @property
    def capability(self) -> tuple[int, int]:
        major, minor = self.compute_cap.split(".")
        return int(major), int(minor)


@dataclass(frozen=True)
class Process:
    """A row of the processes section; ``used_mib`` is None under WDDM."""

    gpu: int
    pid: int
    type: str
    name: str
    used_mib: int | None = None


@dataclass(frozen=True)
class Recording:
    """The facts of one recorded machine (or a special mode with no GPUs)."""

    name: str
    os: str  # "linux" | "windows"
    mode: str = "ok"
    driver_version: str = ""
    smi_version: str = ""
    cuda_version: str | None = None  # the header's "CUDA Version"; None prints N/A
    timestamp: str = ""
    gpus: tuple[Gpu, ...] = ()
    processes: tuple[Process, ...] = ()

    @property
    def driver_major(self) -> int:
        return int(self.driver_version.split(".")[0])

    @property
    def has_compute_cap_field(self) -> bool:
        return self.mode == "ok" and self.driver_major >= COMPUTE_CAP_SINCE


def read_recording(path: Path) -> Recording:
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    gpus = tuple(Gpu(index=i, **g) for i, g in enumerate(data.pop("gpus", [])))
    processes = tuple(Process(**p) for p in data.pop("processes", []))
    rec = Recording(name=path.stem, gpus=gpus, processes=processes, **data)
    if rec.mode not in MODES:
        raise ValueError(f"{path}: unknown mode {rec.mode!r}")
    return rec


def load_recording(name: str) -> Recording:
    """The recording ``name`` (one of :data:`RECORDINGS`)."""
    if name not in RECORDINGS:
        raise KeyError(f"no GPU recording {name!r}; known: {', '.join(RECORDINGS)}")
    return read_recording(DATA / f"{name}.toml")


def install_fake_nvidia_smi(bin_dir: Path, recording: str) -> Path:
    """Write ``bin_dir/nvidia-smi`` replaying ``recording``; returns the launcher."""
    rec = load_recording(recording)
    if rec.mode == "absent":
        raise ValueError("'absent' means no nvidia-smi at all: use the no_nvidia_smi fixture")
    bin_dir.mkdir(parents=True, exist_ok=True)
    launcher = bin_dir / "nvidia-smi"
    args = [sys.executable, "-I", "-S", str(Path(__file__).resolve()), str(DATA / f"{recording}.toml")]
    launcher.write_text(f'#!/bin/sh\nexec {shlex.join(args)} "$@"\n', encoding="utf-8")
    launcher.chmod(0o755)
    return launcher


# --- the summary table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Column widths and row templates of one driver generation's table."""

    cols: tuple[int, int, int]
    title: str
    name_width: int  # longer names are cut to name_width - 3 plus "..."
    head_linux: str
    head_windows: str
    head_power: str
    row_linux: str
    row_windows: str
    bus: str
    power: str
    memory: str
    pid_width: int
    label_width: int  # -q label column


_ROW_WIDE = "{idx:>4}  {name:<27}    {pm:<3} "
_WIN_WIDE = "{idx:>4}  {name:<27}  {dm:<4}  "
_HEAD_LINUX_WIDE = " GPU  Name                 Persistence-M "
_HEAD_POWER_WIDE = " Fan  Temp   Perf          Pwr:Usage/Cap "
CLASSIC = Layout(
    (31, 22, 22), "| NVIDIA-SMI {smi:<13}Driver Version: {drv:<13}CUDA Version: {cuda:<9}|", 18,
    " GPU  Name        Persistence-M", " GPU  Name            TCC/WDDM ", " Fan  Temp  Perf  Pwr:Usage/Cap",
    "{idx:>4}  {name:<18}  {pm:<3}  ", "{idx:>4}  {name:<18} {dm:<4}  ", " {bus} {disp:>3} ",
    " {fan:>3}   {temp:>3}    {perf:<2}{draw:>7} / {cap:>4} ", "{used:>7}MiB / {total:>5}MiB ", 11, 42,
)  # fmt: skip
R530 = Layout(
    (41, 22, 22), "| NVIDIA-SMI {smi:<23}Driver Version: {drv:<13}CUDA Version: {cuda:<9}|", 27,
    _HEAD_LINUX_WIDE, " GPU  Name                      TCC/WDDM ", _HEAD_POWER_WIDE, _ROW_WIDE, _WIN_WIDE,
    " {bus} {disp:>3} ", " {fan:>3}   {temp:>3}    {perf:<2}{draw:>17} / {cap:>4} ",
    "{used:>7}MiB / {total:>5}MiB ", 11, 42,
)  # fmt: skip
R545 = Layout(
    (41, 24, 22), "| NVIDIA-SMI {smi:<23}Driver Version: {drv:<15}CUDA Version: {cuda:<9}|", 27,
    _HEAD_LINUX_WIDE, " GPU  Name                  Driver-Model ", _HEAD_POWER_WIDE, _ROW_WIDE, _WIN_WIDE,
    "   {bus} {disp:>3} ", " {fan:>3}   {temp:>3}    {perf:<2}{draw:>16} / {cap:>5} ",
    "{used:>8}MiB / {total:>6}MiB ", 17, 55,
)  # fmt: skip


# R610 renamed the header's fields (a capture of 610.62 in utkuozdemir/nvidia_gpu_exporter, internal/captures).
R610 = replace(R545, title="| NVIDIA-SMI {smi:<23}KMD Version: {drv:<14}CUDA UMD Version: {cuda:<9}|")
KMD_SINCE = 610


def layout_for(rec: Recording) -> Layout:
    if rec.driver_major >= KMD_SINCE:
        return R610
    return CLASSIC if rec.driver_major < 530 else R530 if rec.driver_major < 545 else R545


def _rule(cols: tuple[int, ...], edge: str, fill: str) -> str:
    return edge + "+".join(fill * w for w in cols) + edge


def _cells(*cells: str) -> str:
    return "|" + "|".join(cells) + "|"


def _gpu_rows(lay: Layout, rec: Recording, g: Gpu) -> list[str]:
    name = g.name if len(g.name) <= lay.name_width else g.name[: lay.name_width - 3] + "..."
    on_off = "On" if g.persistence_mode else "Off"
    first = (lay.row_windows if rec.os == "windows" else lay.row_linux).format(
        idx=g.index, name=name, pm=on_off, dm=g.driver_model or "N/A"
    )
    fan = "N/A" if g.fan_percent is None else f"{g.fan_percent}%"
    power = lay.power.format(fan=fan, temp=f"{g.temperature_c}C", perf=g.perf_state,
                             draw=f"{round(g.power_draw_w)}W", cap=f"{round(g.power_limit_w)}W")  # fmt: skip
    return [
        _cells(first, lay.bus.format(bus=g.pci_bus_id, disp="On" if g.display_active else "Off"), f"{g.ecc:>21} "),
        _cells(
            power,
            lay.memory.format(used=g.memory_used_mib, total=g.memory_total_mib),
            f"{g.utilization_percent:>7}%{g.compute_mode:>13} ",
        ),  # fmt: skip
        _cells(" " * lay.cols[0], " " * lay.cols[1], f"{g.mig_mode:>21} "),
        _rule(lay.cols, "+", "-"),
    ]


def _process_rows(lay: Layout, rec: Recording, gpus: tuple[Gpu, ...]) -> list[str]:
    inner = sum(lay.cols) + 2
    wanted = {g.index for g in gpus}
    rows = []
    for p in (p for p in rec.processes if p.gpu in wanted):
        left = f"  {p.gpu:>3}   N/A  N/A{p.pid:>{lay.pid_width - 1}}{p.type:>7}   "
        right = f"{'N/A':<9}" if p.used_mib is None else f"{p.used_mib:>7}MiB "
        room = inner - len(left) - len(right) - 2
        name = p.name if len(p.name) <= room - 4 else "..." + p.name[-(room - 7) :]
        rows.append(f"|{left}{name:<{room}}  {right}|")
    return rows or [f"|{'  No running processes found':<{inner}}|"]


def table(rec: Recording, gpus: tuple[Gpu, ...]) -> str:
    lay = layout_for(rec)
    inner = sum(lay.cols) + 2
    full = "+" + "-" * inner + "+"
    c1, c2, _ = lay.cols
    head = lay.head_windows if rec.os == "windows" else lay.head_linux
    lines = [
        f"{rec.timestamp}       ",
        full,
        lay.title.format(smi=rec.smi_version, drv=rec.driver_version, cuda=rec.cuda_version or "N/A"),
        _rule(lay.cols, "|", "-")[:-1] + "+",
        _cells(head, " Bus-Id" + "Disp.A ".rjust(c2 - 7), " Volatile Uncorr. ECC "),
        _cells(lay.head_power, "Memory-Usage ".rjust(c2), " GPU-Util  Compute M. "),
        _cells(" " * c1, " " * c2, "               MIG M. "),
        _rule(lay.cols, "|", "="),
    ]
    for g in gpus:
        lines += _gpu_rows(lay, rec, g)
    pid = "PID".rjust(lay.pid_width)
    lines += [" " * (inner + 2), full, f"|{' Processes:':<{inner}}|"]
    lines += [f"|{'  GPU   GI   CI' + pid + '   Type   Process name':<{inner - 11}}GPU Memory |"]
    lines += [f"|{'        ID   ID':<{inner - 11}}Usage      |", "|" + "=" * inner + "|"]
    return "\n".join(lines + _process_rows(lay, rec, gpus) + [full]) + "\n"


# --- -L and -q ----------------------------------------------------------------------------------------------


def gpu_list(gpus: tuple[Gpu, ...]) -> str:
    return "".join(f"GPU {g.index}: {g.name} (UUID: {g.uuid})\n" for g in gpus)


def _enabled(flag: bool | None, unknown: str = "N/A") -> str:
    return unknown if flag is None else "Enabled" if flag else "Disabled"


def detailed(rec: Recording, gpus: tuple[Gpu, ...]) -> str:
    lay = layout_for(rec)
    modern, wide = rec.driver_major >= COMPUTE_CAP_SINCE, lay in (R545, R610)

    def kv(label: str, value: object, depth: int = 0) -> str:
        return f"{('    ' * depth + label):<{lay.label_width}}: {value}"

    cuda = rec.cuda_version or "Not Found"
    lines = ["", "==============NVSMI LOG==============", "", kv("Timestamp", rec.timestamp),
             kv("Driver Version", rec.driver_version), kv("CUDA Version", cuda)]  # fmt: skip
    if lay is R610:  # the old labels stay, marked deprecated, and the new ones follow
        lines[-2] += " [Deprecated; will be removed in CUDA 14.0. Use KMD Version instead]"
        lines[-1] += " [Deprecated; will be removed in CUDA 14.0. Use CUDA UMD Version instead]"
        lines += [kv("KMD Version", rec.driver_version), kv("CUDA UMD Version", cuda)]
    lines += ["", kv("Attached GPUs", len(rec.gpus))]
    for g in gpus:
        lines += [f"GPU {g.pci_bus_id}", kv("Product Name", g.name, 1), kv("Product Brand", g.brand, 1)]
        lines += [kv("Product Architecture", g.architecture, 1)] if rec.driver_major >= 470 else []
        lines += [kv("Display Mode", _enabled(g.display_mode), 1), kv("Display Active", _enabled(g.display_active), 1),
                  kv("Persistence Mode", _enabled(g.persistence_mode), 1), "    Driver Model",
                  kv("Current", g.driver_model or "N/A", 2), kv("Pending", g.driver_model or "N/A", 2),
                  kv("Serial Number", "N/A", 1), kv("GPU UUID", g.uuid, 1),
                  kv("Minor Number", "N/A" if rec.os == "windows" else g.index, 1),
                  "    PCI", kv("Bus Id", g.pci_bus_id, 2),
                  kv("Fan Speed", "N/A" if g.fan_percent is None else f"{g.fan_percent} %", 1),
                  kv("Performance State", g.perf_state, 1), "    FB Memory Usage",
                  kv("Total", f"{g.memory_total_mib} MiB", 2)]  # fmt: skip
        lines += [kv("Reserved", f"{g.memory_reserved_mib} MiB", 2)] if modern else []
        lines += [kv("Used", f"{g.memory_used_mib} MiB", 2), kv("Free", f"{g.memory_free_mib} MiB", 2),
                  kv("Compute Mode", g.compute_mode, 1), "    Temperature",
                  kv("GPU Current Temp", f"{g.temperature_c} C", 2),
                  "    GPU Power Readings" if wide else "    Power Readings",
                  kv("Power Draw", f"{g.power_draw_w:.2f} W", 2),
                  kv("Current Power Limit" if wide else "Power Limit", f"{g.power_limit_w:.2f} W", 2), ""]  # fmt: skip
    return "\n".join(lines) + "\n"


# --- --query-gpu ---------------------------------------------------------------------------------------------

Getter = Callable[[Recording, Gpu], object]

# canonical name -> (unit or None, value); a value "[N/A]" never gets a unit.
FIELDS: dict[str, tuple[str | None, Getter]] = {
    "driver_version": (None, lambda r, g: r.driver_version),
    "count": (None, lambda r, g: len(r.gpus)),
    "name": (None, lambda r, g: g.name),
    "uuid": (None, lambda r, g: g.uuid),
    "pci.bus_id": (None, lambda r, g: g.pci_bus_id),
    "index": (None, lambda r, g: g.index),
    "display_mode": (None, lambda r, g: _enabled(g.display_mode, "[N/A]")),
    "display_active": (None, lambda r, g: _enabled(g.display_active, "[N/A]")),
    "persistence_mode": (None, lambda r, g: _enabled(g.persistence_mode, "[N/A]")),
    "driver_model.current": (None, lambda r, g: g.driver_model or "[N/A]"),
    "fan.speed": ("%", lambda r, g: "[N/A]" if g.fan_percent is None else g.fan_percent),
    "pstate": (None, lambda r, g: g.perf_state),
    "memory.total": ("MiB", lambda r, g: g.memory_total_mib),
    "memory.used": ("MiB", lambda r, g: g.memory_used_mib),
    "memory.free": ("MiB", lambda r, g: g.memory_free_mib),
    "compute_mode": (None, lambda r, g: g.compute_mode),
    "compute_cap": (None, lambda r, g: g.compute_cap),
    "utilization.gpu": ("%", lambda r, g: g.utilization_percent),
    "temperature.gpu": (None, lambda r, g: g.temperature_c),
    "power.draw": ("W", lambda r, g: f"{g.power_draw_w:.2f}"),
    "power.limit": ("W", lambda r, g: f"{g.power_limit_w:.2f}"),
}
ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id"}


def query_gpu(rec: Recording, gpus: tuple[Gpu, ...], fields: str, fmt: set[str]) -> tuple[int, str]:
    names = [f.strip() for f in fields.split(",")]
    for f in names:
        canonical = ALIASES.get(f, f)
        if canonical not in FIELDS or (canonical == "compute_cap" and not rec.has_compute_cap_field):
            return 2, f'Field "{f}" is not a valid field to query.\n\n'
    columns = [(ALIASES.get(f, f), *FIELDS[ALIASES.get(f, f)]) for f in names]
    out = [] if "noheader" in fmt else [", ".join(n + (f" [{u}]" if u else "") for n, u, _ in columns)]
    for g in gpus:
        values = [(str(get(rec, g)), u) for _, u, get in columns]
        out.append(", ".join(v if not u or v == "[N/A]" or "nounits" in fmt else f"{v} {u}" for v, u in values))
    return 0, "\n".join(out) + "\n"


# --- command line -------------------------------------------------------------------------------------------

_VALUED = {"--query-gpu": "query-gpu", "--format": "format", "-i": "id", "--id": "id"}
_FLAGS = {"-L": "list", "--list-gpus": "list", "-q": "query", "--query": "query"}


def parse_args(argv: list[str]) -> dict[str, str] | None:
    """Options as {kind: value}, or None for a combination nvidia-smi rejects."""
    opts: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        key, eq, value = arg.partition("=")
        if arg in _FLAGS:
            opts[_FLAGS[arg]] = ""
        elif key in _VALUED:
            opts[_VALUED[key]] = value if eq else next(args, "")
        else:
            return None
    actions = [k for k in ("list", "query", "query-gpu") if k in opts]
    fmt = set(opts.get("format", "csv").split(","))
    if len(actions) > 1 or ("query-gpu" in opts) != ("format" in opts):
        return None
    return opts if "csv" in fmt and fmt <= {"csv", "noheader", "nounits"} else None


def select(rec: Recording, ids: str | None) -> tuple[Gpu, ...] | None:
    if ids is None:
        return rec.gpus
    wanted = [i.strip() for i in ids.split(",")]
    picked = [g for w in wanted for g in rec.gpus if w in (str(g.index), g.uuid) or w.upper() == g.pci_bus_id]
    return tuple(picked) if len(picked) == len(wanted) else None


def run(rec: Recording, argv: list[str]) -> tuple[int, str]:
    """Exit status and stdout of one invocation (the real tool writes its errors to stdout too)."""
    if rec.mode == "driver-not-loaded":
        return 9, DRIVER_NOT_LOADED + "\n\n"
    if rec.mode == "driver-mismatch":
        nvml = ".".join(rec.driver_version.split(".")[:2])
        return 18, f"Failed to initialize NVML: Driver/library version mismatch\nNVML library version: {nvml}\n"
    opts = parse_args(argv)
    if opts is None:
        return 2, INVALID_ARGS + "\n"
    gpus = select(rec, opts.get("id"))
    if gpus is None:
        return 6, NO_DEVICES + "\n"
    if "query-gpu" in opts:
        return query_gpu(rec, gpus, opts["query-gpu"], set(opts["format"].split(",")))
    if "list" in opts:
        return 0, gpu_list(gpus)
    if "query" in opts:
        return 0, detailed(rec, gpus)
    return 0, table(rec, gpus)


def main(argv: list[str]) -> int:
    """``fake_nvidia_smi.py RECORDING.toml [nvidia-smi arguments]``."""
    rec = read_recording(Path(argv[0]))
    if rec.mode == "hang":
        time.sleep(HANG_SECONDS)
        return 0
    code, out = run(rec, argv[1:])
    newline = "\r\n" if rec.os == "windows" else "\n"
    sys.stdout.buffer.write(out.replace("\n", newline).encode("utf-8"))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
