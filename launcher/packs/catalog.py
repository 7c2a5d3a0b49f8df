"""Environment packs, ``packs/*.toml``, as checked, frozen records.

A pack is one combination known to work: a Python version, an exact torch, torchvision and xformers with their
CUDA variant, the GPU architectures those builds carry, the minimum driver per OS, and the runtime's pinned
requirements (``packs/runtime.txt``, shared by every pack).  The facts live in the files, each with its source;
this module only reads and checks them, and answers the two questions the resolver and the builder ask: "does
this build run on compute capability X.Y?" and "what exactly do I install on this OS?".

Architecture strings follow ``TORCH_CUDA_ARCH_LIST``: ``"8.6"`` is SASS for sm_86, ``"9.0a"`` is SASS with
arch-specific features (runs on 9.0 only); the ``*_ptx`` lists hold the ``+PTX`` entries, which the driver can
JIT-compile for any newer GPU.  SASS for X.y runs on X.z with z >= y, never across majors.

The PyPI route of the torch channel: ``pypi_torch_linux`` / ``pypi_torch_windows`` (and ``pypi_torchvision_*``)
name the plain version on PyPI that can stand in for the pack's ``+cuXXX``/``+cpu`` build on that OS when every
torch mirror fails, e.g. ``"2.10.0"`` for ``2.10.0+cu128`` on Linux (PyPI's Linux 2.10.0 is the cu128 build).
``""`` (the default) means PyPI has no equivalent there: its Windows torch is CPU-only, and its Linux torch is
one CUDA build per release.  The version must be the pack's own without the local label; a pack with a
torchvision needs both or neither.  :meth:`Pack.pypi_pins` gives the pins; the builder switches to them.

``optional`` names the parts of the trio (``torchvision``, ``xformers``) that the runtime can do without: they are
not in :meth:`Pack.pins` but in :meth:`Pack.optional_pins`, and the builder installs each where it can and keeps
it only where the self-check proves it works, saying so in the plan and the stamp (the CPU pack's torchvision,
which a wheel folder holding only torch lacks; xformers 0.0.35 on a torch newer than the one it was built against).

:func:`load_packs` reports every problem of every file at once, like ``config validate`` does.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

from launcher.errors import PackFileInvalid, UnknownPack

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OS_NAMES = ("linux", "windows", "macos")
HEAVY = ("torch", "torchvision", "xformers")  # pinned by the pack, never by the runtime set

Coverage = Literal["sass", "ptx", "none"]

_ID = re.compile(r"[a-z0-9][a-z0-9.-]*")
_CUDA = re.compile(r"cpu|cu\d{3}")
_PYTHON = re.compile(r"3\.\d{1,2}")
_VERSION = re.compile(r"\d+(\.\d+)*((a|b|rc|\.post|\.dev)\d+)*(\+[a-z0-9.]+)?")
_DRIVER = re.compile(r"\d+(\.\d+){1,2}")
_ARCH = re.compile(r"(\d+)\.(\d+)(a?)")
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(\s*;.+)?")
_STRINGS = ("id", "title_zh", "title_en", "python", "torch", "torchvision", "xformers", "cuda",
            "min_driver_linux", "min_driver_windows", "runtime", "notes_zh", "notes_en")  # fmt: skip
_LISTS = ("torch_arch", "torch_ptx", "xformers_arch", "xformers_ptx", "os")
_PYPI_ROUTE = ("pypi_torch_linux", "pypi_torch_windows", "pypi_torchvision_linux", "pypi_torchvision_windows")
OPTIONAL_PARTS = ("torchvision", "xformers")
_KEYS = {*_STRINGS, *_LISTS, *_PYPI_ROUTE, "xformers_windows", "priority", "optional"}


def parse_arch(text: str) -> tuple[int, int, bool]:
    """``"8.6"`` → (8, 6, False); ``"9.0a"`` → (9, 0, True).  Raises ValueError on anything else."""
    m = _ARCH.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not an architecture like '8.6' or '9.0a'")
    return int(m.group(1)), int(m.group(2)), bool(m.group(3))


def coverage(arch: tuple[str, ...], ptx: tuple[str, ...], capability: tuple[int, int]) -> Coverage:
    """How a build with these SASS and PTX architectures runs on a GPU of ``capability``."""
    for entry in arch:
        major, minor, specific = parse_arch(entry)
        if (major, minor) == capability or (not specific and major == capability[0] and minor <= capability[1]):
            return "sass"
    if any(parse_arch(entry)[:2] <= capability for entry in ptx):
        return "ptx"
    return "none"


def version_tuple(text: str) -> tuple[int, ...]:
    """``"525.60.13"`` → (525, 60, 13): drivers compare part by part."""
    return tuple(int(part) for part in re.findall(r"\d+", text))


@dataclass(frozen=True)
class Pack:
    id: str
    title_zh: str
    title_en: str
    python: str  # "3.11"
    torch: str  # "2.10.0+cu128"
    torchvision: str  # "" when the pack has none
    xformers: str  # "" when the pack has none
    xformers_windows: str | None  # None: same as xformers; "": none on Windows
    cuda: str  # the variant tag: "cu118", "cu126", "cu128", "cpu"
    torch_arch: tuple[str, ...]
    torch_ptx: tuple[str, ...]
    xformers_arch: tuple[str, ...]
    xformers_ptx: tuple[str, ...]
    min_driver_linux: str  # "" for cpu
    min_driver_windows: str
    os: tuple[str, ...]
    priority: int  # higher wins when several packs fit
    runtime: str  # a file in the packs folder
    notes_zh: str
    notes_en: str
    pypi_torch_linux: str = ""  # the PyPI version equivalent to ``torch`` on Linux; "" for none
    pypi_torch_windows: str = ""
    pypi_torchvision_linux: str = ""
    pypi_torchvision_windows: str = ""
    optional: tuple[str, ...] = ()  # parts of the trio kept only where they install and pass the self-check

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en

    def notes(self, lang: str) -> str:
        return self.notes_zh if lang == "zh" else self.notes_en

    @property
    def uses_gpu(self) -> bool:
        return self.cuda != "cpu"

    @property
    def cuda_version(self) -> tuple[int, int] | None:
        """``cu128`` → (12, 8); None for cpu."""
        return (int(self.cuda[2:-1]), int(self.cuda[-1])) if self.uses_gpu else None

    def xformers_for(self, os_name: str) -> str:
        """The xformers version installed on ``os_name``; "" when there is none."""
        if os_name == "windows" and self.xformers_windows is not None:
            return self.xformers_windows
        return self.xformers

    def min_driver(self, os_name: str) -> str:
        """The oldest NVIDIA driver this pack runs on, on ``os_name``; "" when it needs none."""
        return {"linux": self.min_driver_linux, "windows": self.min_driver_windows}.get(os_name, "")

    def _trio(self, os_name: str) -> list[tuple[str, str]]:
        parts = [("torch", self.torch), ("torchvision", self.torchvision), ("xformers", self.xformers_for(os_name))]
        return [(name, version) for name, version in parts if version]

    def pins(self, os_name: str) -> list[str]:
        """The torch trio as requirement pins, e.g. ``["torch==2.10.0+cu128", "torchvision==…", "xformers==0.0.34"]``,
        without the :attr:`optional` parts (see :meth:`optional_pins`)."""
        return [f"{name}=={v}" for name, v in self._trio(os_name) if name not in self.optional]

    def optional_pins(self, os_name: str) -> list[str]:
        """The pins of the :attr:`optional` parts on ``os_name``: installed where they can be and work."""
        return [f"{name}=={v}" for name, v in self._trio(os_name) if name in self.optional]

    def pypi_pins(self, os_name: str) -> list[str]:
        """The pins PyPI can serve instead of :meth:`pins` on ``os_name``; ``[]`` when PyPI has no equivalent build.

        PyPI's torchvision is the build that matches PyPI's torch, so it comes along even where the pack's own is
        optional (the CPU pack: both are CUDA builds on Linux, CPU builds on Windows)."""
        torch = {"linux": self.pypi_torch_linux, "windows": self.pypi_torch_windows}.get(os_name, "")
        if not torch:
            return []
        vision = {"linux": self.pypi_torchvision_linux, "windows": self.pypi_torchvision_windows}.get(os_name, "")
        pins = [f"torch=={torch}"] + ([f"torchvision=={vision}"] if self.torchvision else [])
        return pins + [p for p in self.pins(os_name) if p.startswith("xformers==")]

    def runtime_requirements(self, packs_dir: Path) -> list[str]:
        """The shared runtime pins (``packs/runtime.txt``), comments and blank lines left out."""
        return read_requirements(packs_dir / self.runtime)

    def torch_coverage(self, capability: tuple[int, int]) -> Coverage:
        return coverage(self.torch_arch, self.torch_ptx, capability) if self.uses_gpu else "none"

    def xformers_coverage(self, capability: tuple[int, int], os_name: str) -> Coverage:
        if not self.xformers_for(os_name):
            return "none"
        return coverage(self.xformers_arch, self.xformers_ptx, capability)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title(lang), "python": self.python, "torch": self.torch,
            "torchvision": self.torchvision or None, "xformers": self.xformers or None,
            "xformers_windows": self.xformers_for("windows") or None, "cuda": self.cuda,
            "torch_arch": list(self.torch_arch), "torch_ptx": list(self.torch_ptx),
            "xformers_arch": list(self.xformers_arch), "xformers_ptx": list(self.xformers_ptx),
            "min_driver": {"linux": self.min_driver_linux or None, "windows": self.min_driver_windows or None},
            "os": list(self.os), "priority": self.priority, "runtime": self.runtime, "notes": self.notes(lang),
            "pypi_route": {os_name: self.pypi_pins(os_name) or None for os_name in ("linux", "windows")},
            "optional": list(self.optional),
        }  # fmt: skip


@dataclass(frozen=True)
class PackSet:
    packs: tuple[Pack, ...]  # highest priority first
    folder: Path

    def all(self) -> tuple[Pack, ...]:
        return self.packs

    def get(self, pack_id: str) -> Pack | None:
        return next((p for p in self.packs if p.id == pack_id), None)

    def require(self, pack_id: str) -> Pack:
        """Like :meth:`get`, but raise :class:`UnknownPack` (with a "did you mean") when there is none."""
        pack = self.get(pack_id.strip())
        if pack is not None:
            return pack
        key, ids = pack_id.strip().lower(), [p.id for p in self.packs]
        near = [i for i in ids if key and i.startswith(key)][:1] or get_close_matches(key, ids, n=1, cutoff=0.5)
        raise UnknownPack(
            name=pack_id,
            suggestion_zh=f"你是不是想要「{near[0]}」？" if near else "",
            suggestion_en=f"Did you mean {near[0]!r}?" if near else "",
        )

    def runtime_requirements(self, pack: Pack) -> list[str]:
        return pack.runtime_requirements(self.folder)


def read_requirements(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


def _check_runtime(path: Path, problems: list[str]) -> None:
    try:
        lines = read_requirements(path)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: cannot be read ({exc})")
        return
    if not lines:
        problems.append(f"{path.name}: has no requirements")
    for line in lines:
        m = _PIN.fullmatch(line)
        if m is None:
            problems.append(f"{path.name}: {line!r} is not pinned as name==version")
        elif m.group(1).lower() in HEAVY:
            problems.append(f"{path.name}: {m.group(1)} is pinned by each pack, not by the runtime set")


class _Checker:
    """Collects every problem of one pack file, then builds the pack if there were none."""

    def __init__(self, raw: dict[str, Any], where: str, problems: list[str]) -> None:
        self.raw, self.where, self.problems = raw, where, problems

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}: {key}: {message}")

    def text(self, key: str, pattern: re.Pattern[str] | None = None, *, required: bool = True) -> str:
        value = self.raw.get(key)
        if not isinstance(value, str) or (required and not value.strip()):
            self.fail(key, "required, a non-empty string" if required else "required, a string (may be empty)")
            return ""
        if value and pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{value!r} is not well-formed")
        return value

    def strings(self, key: str, check: re.Pattern[str] | None = None) -> tuple[str, ...]:
        value = self.raw.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "required, a list of strings")
            return ()
        for v in value:
            if check is not None and not check.fullmatch(v):
                self.fail(key, f"{v!r} is not well-formed")
        return tuple(value)


def _consistency(c: _Checker, pack: Pack) -> None:
    """Rules between fields: local labels, GPU facts present exactly when the pack uses CUDA."""
    for key, value in (("torch", pack.torch), ("torchvision", pack.torchvision)):
        if value and not value.endswith(f"+{pack.cuda}"):
            c.fail(key, f"{value!r} must carry the local label +{pack.cuda} of cuda = {pack.cuda!r}")
    gpu_facts: dict[str, object] = {"torch_arch": pack.torch_arch, "min_driver_linux": pack.min_driver_linux,
                 "min_driver_windows": pack.min_driver_windows}  # fmt: skip
    for key, fact in gpu_facts.items():
        if pack.uses_gpu and not fact:
            c.fail(key, "required for a CUDA pack")
    if not pack.uses_gpu:
        for key, fact in (*gpu_facts.items(), ("torch_ptx", pack.torch_ptx), ("xformers", pack.xformers)):
            if fact:
                c.fail(key, "must be empty for the cpu variant")
    has_xformers = bool(pack.xformers or pack.xformers_windows)
    if has_xformers != bool(pack.xformers_arch):
        c.fail("xformers_arch", "lists the xformers build's architectures: needed exactly when there is an xformers")
    for key, ptx in (("torch_ptx", pack.torch_ptx), ("xformers_ptx", pack.xformers_ptx)):
        if any(parse_arch(a)[2] for a in ptx):
            c.fail(key, "PTX entries are plain X.Y (no 'a' suffix)")
    for os_name in ("linux", "windows"):
        pypi_torch, pypi_vision = getattr(pack, f"pypi_torch_{os_name}"), getattr(pack, f"pypi_torchvision_{os_name}")
        for key, value, own in ((f"pypi_torch_{os_name}", pypi_torch, pack.torch),
                                (f"pypi_torchvision_{os_name}", pypi_vision, pack.torchvision)):  # fmt: skip
            if value and value != own.split("+")[0]:
                c.fail(key, f"{value!r} must be the version of {own!r} without its local label")
        if pypi_torch and bool(pack.torchvision) != bool(pypi_vision):
            c.fail(f"pypi_torchvision_{os_name}", "needed exactly when the pack has a torchvision and a PyPI torch")
        if pypi_vision and not pypi_torch:
            c.fail(f"pypi_torchvision_{os_name}", f"needs pypi_torch_{os_name} too")
    for part in pack.optional:
        if part not in OPTIONAL_PARTS:
            c.fail("optional", f"{part!r} is not one of {', '.join(OPTIONAL_PARTS)} (torch itself is never optional)")
        elif not getattr(pack, part):
            c.fail("optional", f"names {part}, which this pack does not have")
    for name in pack.os:
        if name not in OS_NAMES:
            c.fail("os", f"{name!r} is not one of {', '.join(OS_NAMES)}")
    if not pack.os:
        c.fail("os", "lists at least one OS")


def _pack(raw: dict[str, Any], path: Path, problems: list[str]) -> Pack | None:
    c = _Checker(raw, path.name, problems)
    before = len(problems)
    for key in sorted(set(raw) - _KEYS):
        near = get_close_matches(key, sorted(_KEYS), n=1)
        c.fail(key, "unknown key" + (f"; did you mean {near[0]!r}?" if near else ""))
    pack_id = c.text("id", _ID)
    if pack_id and pack_id != path.stem:
        c.fail("id", f"{pack_id!r} must match the file name {path.stem!r}")
    patterns = {"python": _PYTHON, "torch": _VERSION, "torchvision": _VERSION, "xformers": _VERSION, "cuda": _CUDA,
                "min_driver_linux": _DRIVER, "min_driver_windows": _DRIVER}  # fmt: skip
    optional = {"torchvision", "xformers", "min_driver_linux", "min_driver_windows"}
    fields: dict[str, Any] = {k: c.text(k, patterns.get(k), required=k not in optional) for k in _STRINGS}
    fields.update({k: c.strings(k, None if k == "os" else _ARCH) for k in _LISTS})
    xf_win = raw.get("xformers_windows")
    if xf_win is not None and (not isinstance(xf_win, str) or (xf_win and not _VERSION.fullmatch(xf_win))):
        c.fail("xformers_windows", 'must be a version string, or "" for none on Windows')
    route = {k: raw.get(k, "") for k in _PYPI_ROUTE}
    for key, value in route.items():
        if not isinstance(value, str) or (value and not _VERSION.fullmatch(value)):
            c.fail(key, 'must be a version string, or "" when PyPI has no equivalent build')
    priority = raw.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool):
        c.fail("priority", "required, an integer (higher wins)")
    optional = raw.get("optional", [])
    if not isinstance(optional, list) or not all(isinstance(v, str) for v in optional):
        c.fail("optional", 'must be a list of names, e.g. ["torchvision"]')
    if len(problems) > before:
        return None
    assert isinstance(priority, int)
    pack = Pack(xformers_windows=xf_win, priority=priority, optional=tuple(optional), **fields, **route)
    _consistency(c, pack)
    return pack if len(problems) == before else None


def load_packs(packs_dir: Path) -> PackSet:
    """Load and check every ``*.toml`` in ``packs_dir``; raise :class:`PackFileInvalid` listing every problem."""
    problems: list[str] = []
    packs: list[Pack] = []
    files = sorted(packs_dir.glob("*.toml"))
    if not files:
        problems.append(f"{packs_dir}: no *.toml pack files")
    for path in files:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        pack = _pack(raw, path, problems)
        if pack is not None:
            packs.append(pack)
    for runtime in sorted({p.runtime for p in packs}):
        _check_runtime(packs_dir / runtime, problems)
    if problems:
        listing = "\n".join("  " + p for p in problems)
        raise PackFileInvalid(folder=str(packs_dir), count=len(problems), listing=listing)
    return PackSet(tuple(sorted(packs, key=lambda p: (-p.priority, p.id))), packs_dir)
