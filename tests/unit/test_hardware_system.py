"""The system probe: display adapters from a fake PCI sysfs tree, named by a recorded ``lspci -mm -D``; Windows
adapters from recorded ``Win32_VideoController`` JSON (through a stand-in ``powershell`` on PATH); OS, CPU and RAM
from recorded ``/proc`` and ``/etc`` files; and this machine's real facts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from launcher.hardware import system
from launcher.hardware.system import (
    DisplayAdapter,
    SystemFacts,
    display_adapters,
    parse_cpuinfo,
    parse_lspci,
    parse_meminfo,
    parse_os_release,
    parse_video_controllers,
    probe_system,
    read_pci_displays,
    windows_version,
)

# A desktop with an Intel iGPU (UHD 630) and an AMD Radeon RX 6800 XT, its HDMI audio function and the PCH audio.
PCI_DEVICES = {  # slot: (class, vendor, device)
    "0000:00:02.0": ("0x030000", "0x8086", "0x9bc5"),
    "0000:00:1f.3": ("0x040380", "0x8086", "0x06c8"),
    "0000:03:00.0": ("0x030000", "0x1002", "0x73bf"),
    "0000:03:00.1": ("0x040300", "0x1002", "0xab28"),
}
LSPCI_MM_D = """\
0000:00:00.0 "Host bridge" "Intel Corporation" "10th Gen Core Processor Host Bridge/DRAM Registers" -r05 "Dell" "Device 09a4"
0000:00:02.0 "VGA compatible controller" "Intel Corporation" "CometLake-S GT2 [UHD Graphics 630]" -r05 "Dell" "Device 09a4"
0000:00:1f.3 "Audio device" "Intel Corporation" "Comet Lake PCH cAVS" "Dell" "Device 09a4"
0000:03:00.0 "VGA compatible controller" "Advanced Micro Devices, Inc. [AMD/ATI]" "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]" -rc1 "Sapphire Technology Limited" "Device e438"
0000:03:00.1 "Audio device" "Advanced Micro Devices, Inc. [AMD/ATI]" "Navi 21/23 HDMI/DP Audio Controller" "Sapphire Technology Limited" "Device aab0"
"""
# ConvertTo-Json prints one object for one adapter and a list for several.
WMI_ONE = (
    '{"Name":"AMD Radeon RX 7900 XTX","AdapterCompatibility":"Advanced Micro Devices, Inc.",'
    '"DriverVersion":"31.0.24027.1012","PNPDeviceID":"PCI\\\\VEN_1002&DEV_744C&SUBSYS_471E1043&REV_C8\\\\6&2F1B8B1D&0&00000019"}'
)
WMI_LAPTOP = json.dumps([
    {"Name": "Intel(R) UHD Graphics 620", "AdapterCompatibility": "Intel Corporation", "DriverVersion": "31.0.101.2111",
     "PNPDeviceID": "PCI\\VEN_8086&DEV_5917&SUBSYS_07E41028&REV_07\\3&11583659&0&10"},
    {"Name": "NVIDIA GeForce MX150", "AdapterCompatibility": "NVIDIA", "DriverVersion": "31.0.15.3623",
     "PNPDeviceID": "PCI\\VEN_10DE&DEV_1D10&SUBSYS_07E41028&REV_A1\\4&2C5B2A0C&0&00E0"},
    {"Name": "Microsoft Basic Display Adapter", "AdapterCompatibility": "(Standard display types)",
     "DriverVersion": "10.0.22621.1", "PNPDeviceID": "ROOT\\BASICDISPLAY\\0000"},
])  # fmt: skip
CPUINFO_X86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 165\nmodel name\t: Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz\n"
CPUINFO_ARM = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
MEMINFO = "MemTotal:       32718960 kB\nMemFree:         1843212 kB\nMemAvailable:   24117340 kB\nBuffers:  1 kB\n"
OS_RELEASE = (
    'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.1 LTS (Noble Numbat)"\n'
)


def fake_sysfs(root: Path, devices: dict[str, tuple[str, str, str]]) -> Path:
    for slot, (pci_class, vendor, device) in devices.items():
        folder = root / "bus" / "pci" / "devices" / slot
        folder.mkdir(parents=True)
        for name, value in (("class", pci_class), ("vendor", vendor), ("device", device)):
            (folder / name).write_text(value + "\n")
    return root


def fake_tool(bin_dir: Path, name: str, script: str) -> Path:
    """A ``#!/bin/sh`` stand-in called ``name`` in ``bin_dir``."""
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


def only_on_path(monkeypatch: pytest.MonkeyPatch, bin_dir: Path) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))


def test_sysfs_display_controllers_only(tmp_path: Path) -> None:
    adapters = read_pci_displays(fake_sysfs(tmp_path / "sys", PCI_DEVICES))
    assert adapters == [
        DisplayAdapter("intel", "Intel display controller [8086:9bc5]", "8086:9bc5", "0000:00:02.0"),
        DisplayAdapter("amd", "AMD display controller [1002:73bf]", "1002:73bf", "0000:03:00.0"),
    ]


def test_sysfs_3d_controllers_and_unknown_vendors(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path / "sys", {"0000:00:0f.0": ("0x030000", "0x15ad", "0x0405"),  # VMware SVGA II
                                         "0000:01:00.0": ("0x030200", "0x10de", "0x20b5")})  # A100 (3D controller)  # fmt: skip
    assert [(a.vendor, a.pci_id) for a in read_pci_displays(root)] == [("other", "15ad:0405"), ("nvidia", "10de:20b5")]


def test_no_sysfs_no_adapters(tmp_path: Path) -> None:
    assert read_pci_displays(tmp_path / "missing") == []


def test_lspci_names_display_controllers() -> None:
    assert parse_lspci(LSPCI_MM_D) == {
        "0000:00:02.0": "Intel Corporation CometLake-S GT2 [UHD Graphics 630]",
        "0000:03:00.0": "Advanced Micro Devices, Inc. [AMD/ATI] Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]",
    }
    assert parse_lspci('00:02.0 "VGA compatible controller" "Intel Corporation" "HD Graphics 530"') == {
        "0000:00:02.0": "Intel Corporation HD Graphics 530"  # without -D: domain 0000
    }


def test_linux_adapters_named_by_lspci_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lspci.txt").write_text(LSPCI_MM_D)
    fake_tool(tmp_path / "bin", "lspci", f'[ "$*" = "-mm -D" ] || exit 1\ncat "{tmp_path / "lspci.txt"}"\n')
    only_on_path(monkeypatch, tmp_path / "bin")
    adapters = display_adapters("linux", fake_sysfs(tmp_path / "sys", PCI_DEVICES))
    assert [(a.vendor, a.name) for a in adapters] == [
        ("intel", "Intel Corporation CometLake-S GT2 [UHD Graphics 630]"),
        ("amd", "Advanced Micro Devices, Inc. [AMD/ATI] Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]"),
    ]


def test_a_failing_lspci_keeps_the_sysfs_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", "lspci", "echo 'pcilib: Cannot open /proc/bus/pci' >&2\nexit 1\n")
    only_on_path(monkeypatch, tmp_path / "bin")
    adapters = display_adapters("linux", fake_sysfs(tmp_path / "sys", PCI_DEVICES))
    assert [a.name for a in adapters] == ["Intel display controller [8086:9bc5]", "AMD display controller [1002:73bf]"]


def test_one_windows_adapter_is_an_object() -> None:
    (amd,) = parse_video_controllers(WMI_ONE)
    assert (amd.vendor, amd.name, amd.pci_id, amd.driver_version) == (
        "amd", "AMD Radeon RX 7900 XTX", "1002:744c", "31.0.24027.1012")  # fmt: skip
    assert amd.location.startswith("PCI\\VEN_1002&DEV_744C")


def test_several_windows_adapters_are_a_list() -> None:
    adapters = parse_video_controllers(WMI_LAPTOP)
    assert [(a.vendor, a.pci_id) for a in adapters] == [("intel", "8086:5917"), ("nvidia", "10de:1d10"), ("other", "")]
    facts = SystemFacts("windows", "Windows 11 (10.0.22631)", "", 8, None, None, "C:\\Yijian", None, adapters)
    assert [a.name for a in facts.other_gpus] == ["Intel(R) UHD Graphics 620", "Microsoft Basic Display Adapter"]


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]"])
def test_bad_wmi_output_gives_no_adapters(text: str) -> None:
    assert parse_video_controllers(text) == ()


def test_windows_adapters_through_powershell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "wmi.json").write_text(WMI_LAPTOP)
    script = (
        f'case "$*" in *"Get-CimInstance Win32_VideoController"*) cat "{tmp_path / "wmi.json"}";; *) exit 1;; esac\n'
    )
    fake_tool(tmp_path / "bin", "powershell", script)
    only_on_path(monkeypatch, tmp_path / "bin")
    assert [a.name for a in display_adapters("windows")] == [
        "Intel(R) UHD Graphics 620", "NVIDIA GeForce MX150", "Microsoft Basic Display Adapter"]  # fmt: skip


def test_a_hanging_powershell_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", "powershell", "exec sleep 60\n")
    only_on_path(monkeypatch, tmp_path / "bin")
    monkeypatch.setattr(system, "COMMAND_TIMEOUT", 0.3)
    assert display_adapters("windows") == ()


def test_recorded_os_cpu_and_memory_files() -> None:
    assert parse_os_release(OS_RELEASE) == "Ubuntu 24.04.1 LTS"
    assert parse_os_release('NAME="Alpine Linux"\nVERSION="3.20"\n') == "Alpine Linux 3.20"
    assert parse_cpuinfo(CPUINFO_X86) == "Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz"
    assert parse_cpuinfo(CPUINFO_ARM) == "Raspberry Pi 4 Model B Rev 1.4"
    assert parse_meminfo(MEMINFO) == (32718960 // 1024, 24117340 // 1024)
    assert parse_meminfo("") == (None, None)


@pytest.mark.parametrize(
    ("version", "text"),
    [("10.0.22631", "Windows 11 (10.0.22631)"), ("10.0.19045", "Windows 10 (10.0.19045)"),
     ("6.1.7601", "Windows 6 (6.1.7601)")],
)  # fmt: skip
def test_windows_11_is_told_by_its_build(version: str, text: str) -> None:
    assert windows_version(version) == text


def test_probe_reads_given_roots(tmp_path: Path) -> None:
    proc, etc = tmp_path / "proc", tmp_path / "etc"
    proc.mkdir()
    etc.mkdir()
    (proc / "cpuinfo").write_text(CPUINFO_X86)
    (proc / "meminfo").write_text(MEMINFO)
    (etc / "os-release").write_text(OS_RELEASE)
    bundle = tmp_path / "not" / "yet" / "made"  # free space is measured at the nearest existing parent
    facts = probe_system(bundle, "linux", sysfs_root=fake_sysfs(tmp_path / "sys", PCI_DEVICES),
                         proc_root=proc, etc_root=etc)  # fmt: skip
    assert facts.os_version.startswith("Ubuntu 24.04.1 LTS (kernel ")
    assert (facts.cpu_model, facts.ram_total_mib, facts.ram_available_mib) == (
        "Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz", 31952, 23552)  # fmt: skip
    assert facts.disk_free_mib is not None and facts.disk_free_mib > 0
    assert [a.vendor for a in facts.other_gpus] == ["intel", "amd"]
    data = facts.to_dict()
    assert data["disk_path"] == str(bundle) and data["display_adapters"][1]["pci_id"] == "1002:73bf"
    assert json.loads(json.dumps(data)) == data


def test_this_machine(tmp_path: Path) -> None:
    facts = probe_system(tmp_path)
    assert facts.os == "linux" and facts.os_version and facts.cpu_model
    assert facts.cpu_logical_cores and facts.cpu_logical_cores > 0
    assert facts.ram_total_mib and facts.ram_available_mib and 0 < facts.ram_available_mib <= facts.ram_total_mib
    assert facts.disk_free_mib and facts.disk_free_mib > 0
    assert not [a for a in facts.display_adapters if a.vendor == "nvidia"]
    assert set(facts.to_dict()) == {"os", "os_version", "cpu_model", "cpu_logical_cores", "ram_total_mib",
                                    "ram_available_mib", "disk_path", "disk_free_mib", "display_adapters"}  # fmt: skip
    assert probe_system(tmp_path, adapters=False).display_adapters == ()
