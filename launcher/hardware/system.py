"""The rest of the machine: OS, CPU, RAM, free disk at the bundle root, and display adapters of any vendor.

:func:`probe_system` reads only cheap sources and never raises (an unreadable fact stays None or empty):

* OS name and version: ``/etc/os-release`` plus the kernel on Linux, the build number on Windows (builds from
  22000 are Windows 11), ``platform.mac_ver`` on macOS;
* CPU model: ``/proc/cpuinfo`` on Linux, the registry's ``ProcessorNameString`` on Windows, ``platform`` else;
  logical cores from ``os.cpu_count``;
* RAM total and available: ``/proc/meminfo`` on Linux, ``GlobalMemoryStatusEx`` on Windows, ``sysconf`` else;
* free disk: ``shutil.disk_usage`` at the bundle root (or its nearest existing parent);
* display adapters, so the doctor can tell an AMD or Intel machine from one with no GPU at all.  On Linux they
  come from PCI sysfs, ``<sysfs>/bus/pci/devices/*/{class,vendor,device}`` (class ``0x03xxxx`` is a display
  controller); sysfs has ids but no names, so ``lspci -mm -D`` names them when it is installed.  On Windows
  ``Get-CimInstance Win32_VideoController`` is run through PowerShell with a timeout (its start-up takes about
  half a second, so callers may skip it with ``adapters=False``).

:func:`probe_hardware` puts the NVIDIA facts (NVML first, then nvidia-smi) and these together.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap import proc
from launcher.hardware.nvidia import Hardware, host_os, probe
from launcher.hardware.nvml import probe_nvml, timed_out

VENDORS = {"10de": "nvidia", "1002": "amd", "1022": "amd", "8086": "intel"}
VENDOR_NAMES = {"nvidia": "NVIDIA", "amd": "AMD", "intel": "Intel"}
COMMAND_TIMEOUT = 5.0
VIDEO_CONTROLLER_QUERY = (
    "Get-CimInstance Win32_VideoController | "
    "Select-Object Name,AdapterCompatibility,DriverVersion,PNPDeviceID | ConvertTo-Json -Compress"
)
_PNP_IDS = re.compile(r"VEN_([0-9A-F]{4})&DEV_([0-9A-F]{4})", re.IGNORECASE)
MIB = 1024 * 1024


@dataclass(frozen=True)
class DisplayAdapter:
    vendor: str  # "nvidia" | "amd" | "intel" | "other"
    name: str  # "Advanced Micro Devices, Inc. [AMD/ATI] Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]"; ids if unknown
    pci_id: str = ""  # "1002:73bf" (vendor:device); "" when unknown
    location: str = ""  # the PCI slot "0000:03:00.0" (Linux) or the PNPDeviceID (Windows)
    driver_version: str | None = None  # Windows only: "31.0.101.5186"

    def to_dict(self) -> dict[str, Any]:
        return {"vendor": self.vendor, "name": self.name, "pci_id": self.pci_id or None,
                "location": self.location or None, "driver_version": self.driver_version}  # fmt: skip


@dataclass(frozen=True)
class SystemFacts:
    os: str  # "linux" | "windows" | "macos"
    os_version: str  # "Ubuntu 24.04.1 LTS (kernel 6.8.0-45-generic)", "Windows 11 (10.0.22631)"
    cpu_model: str  # "" when unknown
    cpu_logical_cores: int | None
    ram_total_mib: int | None
    ram_available_mib: int | None
    disk_path: str  # where free space was measured: the bundle root
    disk_free_mib: int | None
    display_adapters: tuple[DisplayAdapter, ...] = ()

    @property
    def other_gpus(self) -> tuple[DisplayAdapter, ...]:
        """The adapters not made by NVIDIA (AMD, Intel, virtual or server graphics)."""
        return tuple(a for a in self.display_adapters if a.vendor != "nvidia")

    def to_dict(self) -> dict[str, Any]:
        return {"os": self.os, "os_version": self.os_version, "cpu_model": self.cpu_model or None,
                "cpu_logical_cores": self.cpu_logical_cores, "ram_total_mib": self.ram_total_mib,
                "ram_available_mib": self.ram_available_mib, "disk_path": self.disk_path,
                "disk_free_mib": self.disk_free_mib,
                "display_adapters": [a.to_dict() for a in self.display_adapters]}  # fmt: skip


@dataclass(frozen=True)
class HardwareReport:
    """Everything the hardware probe found: the NVIDIA side and the rest."""

    nvidia: Hardware
    system: SystemFacts

    def to_dict(self) -> dict[str, Any]:
        return {"nvidia": self.nvidia.to_dict(), "system": self.system.to_dict()}


# --- small readers -------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _run(argv: list[str]) -> str | None:
    """stdout of a command that exited 0 within :data:`COMMAND_TIMEOUT`, or None (missing, failed, timed out)."""
    try:
        done = proc.run(argv, timeout=COMMAND_TIMEOUT)
    except (OSError, proc.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def vendor_of(vendor_id: str) -> str:
    return VENDORS.get(vendor_id.lower().removeprefix("0x"), "other")


# --- OS, CPU, RAM, disk --------------------------------------------------------------------------------------


def parse_os_release(text: str) -> str:
    """``PRETTY_NAME`` (else ``NAME VERSION``) of an ``os-release`` file; "" when absent."""
    values = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            values[key.strip()] = value.strip().strip("\"'")
    return values.get("PRETTY_NAME") or " ".join(v for v in (values.get("NAME"), values.get("VERSION")) if v)


def windows_version(version: str) -> str:
    """``Windows 11 (10.0.22631)`` from ``platform.version()``; Windows 11 reports itself as 10.0."""
    parts = version.split(".")
    build = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
    return f"Windows {'11' if build >= 22000 else '10' if parts[0] == '10' else parts[0]} ({version})"


def _os_version(os_name: str, etc: Path) -> str:
    if os_name == "windows":
        return windows_version(platform.version())
    if os_name == "macos":
        return f"macOS {platform.mac_ver()[0]}".strip()
    name = parse_os_release(_read_text(etc / "os-release")) or "Linux"
    return f"{name} (kernel {platform.release()})"


def parse_cpuinfo(text: str) -> str:
    """The CPU model from ``/proc/cpuinfo``: ``model name`` (x86), else ``Model``/``Hardware`` (ARM boards)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    return next((fields[k] for k in ("model name", "model", "hardware", "cpu model") if k in fields), "")


def _windows_cpu() -> str:
    if sys.platform == "win32":
        import winreg

        try:
            key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0")
            with key:
                return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
        except OSError:
            pass
    return os.environ.get("PROCESSOR_IDENTIFIER", "")


def _cpu_model(os_name: str, proc: Path) -> str:
    if os_name == "linux":
        model = parse_cpuinfo(_read_text(proc / "cpuinfo"))
    elif os_name == "windows":
        model = _windows_cpu()
    else:
        model = ""
    return model or platform.processor() or platform.machine()


def parse_meminfo(text: str) -> tuple[int | None, int | None]:
    """(total, available) MiB from ``/proc/meminfo`` (values in kB)."""
    kib = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        number = value.split()[0] if colon and value.split() else ""
        if number.isdigit():
            kib[key.strip()] = int(number)
    available = kib.get("MemAvailable", kib.get("MemFree"))
    return (kib["MemTotal"] // 1024 if "MemTotal" in kib else None), (None if available is None else available // 1024)


def _windows_memory() -> tuple[int | None, int | None]:
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        class MemoryStatusEx(ctypes.Structure):
            _fields_ = [("dwLength", wintypes.DWORD), ("dwMemoryLoad", wintypes.DWORD),
                        ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]  # fmt: skip

        status = MemoryStatusEx()
        status.dwLength = ctypes.sizeof(MemoryStatusEx)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return status.ullTotalPhys // MIB, status.ullAvailPhys // MIB
    return None, None


def _memory(os_name: str, proc: Path) -> tuple[int | None, int | None]:
    if os_name == "linux":
        return parse_meminfo(_read_text(proc / "meminfo"))
    if os_name == "windows":
        return _windows_memory()
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MIB, None
    except (ValueError, OSError, AttributeError):
        return None, None


def disk_free_mib(path: Path) -> int | None:
    """Free MiB on the file system holding ``path`` (or its nearest existing parent)."""
    for place in (path, *path.parents):
        try:
            return shutil.disk_usage(place).free // MIB
        except OSError:
            continue
    return None


# --- display adapters ----------------------------------------------------------------------------------------


def read_pci_displays(sysfs_root: Path) -> list[DisplayAdapter]:
    """Display controllers (PCI class ``0x03xxxx``) under ``<sysfs_root>/bus/pci/devices``, named by their ids."""
    try:
        devices = sorted((sysfs_root / "bus" / "pci" / "devices").iterdir())
    except OSError:
        return []
    found = []
    for device in devices:
        if not _read_text(device / "class").strip().lower().startswith("0x03"):
            continue
        vendor_id = _read_text(device / "vendor").strip().lower().removeprefix("0x")
        device_id = _read_text(device / "device").strip().lower().removeprefix("0x")
        vendor = vendor_of(vendor_id)
        pci_id = f"{vendor_id}:{device_id}"
        name = f"{VENDOR_NAMES.get(vendor, 'Unknown vendor')} display controller [{pci_id}]"
        found.append(DisplayAdapter(vendor, name, pci_id, device.name))
    return found


def parse_lspci(text: str) -> dict[str, str]:
    """Display controller names by slot from ``lspci -mm -D``: ``{"0000:03:00.0": "AMD ... Navi 21 [...]"}``."""
    names = {}
    for line in text.splitlines():
        try:
            fields = shlex.split(line)
        except ValueError:
            continue
        if len(fields) < 4 or not re.search(r"VGA|3D|Display", fields[1]):
            continue
        slot = fields[0] if fields[0].count(":") == 2 else f"0000:{fields[0]}"
        names[slot] = f"{fields[2]} {fields[3]}"
    return names


def _linux_adapters(sysfs_root: Path, lspci: str | None) -> tuple[DisplayAdapter, ...]:
    adapters = read_pci_displays(sysfs_root)
    if adapters and lspci:
        names = parse_lspci(_run([lspci, "-mm", "-D"]) or "")
        adapters = [
            DisplayAdapter(a.vendor, names[a.location], a.pci_id, a.location) if a.location in names else a
            for a in adapters
        ]
    return tuple(adapters)


def parse_video_controllers(text: str) -> tuple[DisplayAdapter, ...]:
    """Adapters from ``Win32_VideoController`` as ``ConvertTo-Json`` prints it (one object, or a list)."""
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError:
        return ()
    rows = data if isinstance(data, list) else [data]
    adapters = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        pnp = str(row.get("PNPDeviceID") or "")
        ids = _PNP_IDS.search(pnp)
        pci_id = f"{ids.group(1)}:{ids.group(2)}".lower() if ids else ""
        vendor = vendor_of(ids.group(1)) if ids else "other"
        name = str(row.get("Name") or row.get("AdapterCompatibility") or "Unknown display adapter").strip()
        driver = str(row["DriverVersion"]) if row.get("DriverVersion") else None
        adapters.append(DisplayAdapter(vendor, name, pci_id, pnp, driver))
    return tuple(adapters)


def _windows_adapters() -> tuple[DisplayAdapter, ...]:
    shell = shutil.which("powershell") or shutil.which("pwsh")
    if shell is None:
        return ()
    return parse_video_controllers(
        _run([shell, "-NoProfile", "-NonInteractive", "-Command", VIDEO_CONTROLLER_QUERY]) or ""
    )


def display_adapters(os_name: str, sysfs_root: Path = Path("/sys")) -> tuple[DisplayAdapter, ...]:
    """This machine's display adapters: PCI sysfs (+ lspci names) on Linux, WMI on Windows, none on macOS."""
    if os_name == "linux":
        return _linux_adapters(sysfs_root, shutil.which("lspci"))
    if os_name == "windows":
        return _windows_adapters()
    return ()


# --- entry points --------------------------------------------------------------------------------------------


def probe_system(bundle_root: Path, os_name: str | None = None, *, adapters: bool = True,
                 sysfs_root: Path = Path("/sys"), proc_root: Path = Path("/proc"),
                 etc_root: Path = Path("/etc")) -> SystemFacts:  # fmt: skip
    """OS, CPU, RAM, free disk at ``bundle_root`` and (unless ``adapters=False``) display adapters.  Never raises."""
    os_name = os_name or host_os()
    total, available = _memory(os_name, proc_root)
    return SystemFacts(
        os=os_name,
        os_version=_os_version(os_name, etc_root),
        cpu_model=_cpu_model(os_name, proc_root),
        cpu_logical_cores=os.cpu_count(),
        ram_total_mib=total,
        ram_available_mib=available,
        disk_path=str(bundle_root),
        disk_free_mib=disk_free_mib(bundle_root),
        display_adapters=display_adapters(os_name, sysfs_root) if adapters else (),
    )


def probe_hardware(bundle_root: Path, os_name: str | None = None, timeout: float = 5.0) -> HardwareReport:
    """NVIDIA facts (NVML, else nvidia-smi) and the system facts.  Never raises.

    A hung NVML is not followed by nvidia-smi, which talks to the same driver and would hang as well.  On Windows
    the slow WMI adapter query runs only when no NVIDIA GPU was found: it is what tells AMD and Intel apart there.
    """
    os_name = os_name or host_os()
    nvidia = probe_nvml(timeout, os_name)
    if nvidia is None or (not nvidia.gpus and not timed_out(nvidia)):
        smi = probe(os_name, timeout)
        nvidia = smi if nvidia is None or smi.source != "none" else nvidia
    want_adapters = os_name != "windows" or not nvidia.gpus
    return HardwareReport(nvidia, probe_system(bundle_root, os_name, adapters=want_adapters))
