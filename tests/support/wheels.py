"""Fake Python wheels, built with the standard library only.

:func:`build_wheel` writes a valid, reproducible wheel (``METADATA``, ``WHEEL``,
``RECORD`` with ``sha256=<urlsafe b64>,<size>``) that pip and uv install.  On
top of it:

* :func:`fake_torch_stack` builds torch, torchvision and xformers wheels whose
  modules answer the questions an installer asks of the real ones:
  ``torch.__version__``, ``torch.version.cuda`` (``None`` for a CPU build),
  ``torch.cuda.is_available()`` (always ``False``: there is no GPU here),
  ``torch.cuda.get_arch_list()`` (the compiled list; real torch returns ``[]``
  without a device), ``torch.backends.cudnn.version()``, ``torchvision.__version__``
  and ``xformers.__version__``.  torchvision and xformers pin
  ``torch==<public version>`` like the real wheels.  xformers ships a
  ``cpp_lib.json`` with its build metadata and, when imported beside another
  torch than the one it was built for, logs the real
  ``WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions...`` text to stderr.
* :func:`small_packages` builds ordinary packages for resolver tests.

Same inputs give byte-identical wheels (fixed zip timestamps, seeded padding).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import itertools
import json
import platform
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)

# What the real Linux wheels report (compat-and-mirrors.md §2.2); cuDNN as torch.backends.cudnn.version().
ARCH_LISTS: dict[str, tuple[str, ...]] = {
    "12.1": ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
    "12.6": ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
    "12.8": ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"),
}
CUDNN_VERSIONS: dict[str, int] = {"12.1": 8902, "12.6": 90501, "12.8": 90701}


def normalize(name: str) -> str:
    """The PEP 503 normalized project name (``Needs_Torch`` -> ``needs-torch``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public_version(version: str) -> str:
    """The version without its local label (``2.7.1+cu128`` -> ``2.7.1``)."""
    return version.split("+", 1)[0]


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    """The file name per the wheel spec; a local label stays (``torch-2.7.1+cu128-py3-none-any.whl``)."""
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version.replace('-', '_')}-{tag}.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _metadata(name: str, version: str, requires: Sequence[str], requires_python: str | None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", "Summary: fake package for tests"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {req}" for req in requires]
    return "\n".join(lines) + "\n"


def _wheel_info(tag: str) -> str:
    pythons, abis, platforms = (part.split(".") for part in tag.split("-"))
    lines = [
        "Wheel-Version: 1.0",
        "Generator: yijian-tests (stdlib)",
        f"Root-Is-Purelib: {str(abis == ['none']).lower()}",
    ]
    lines += [f"Tag: {'-'.join(t)}" for t in itertools.product(pythons, abis, platforms)]
    return "\n".join(lines) + "\n"


def build_wheel(
    dest_dir: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    files: Mapping[str, str | bytes] | None = None,
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    pad_to: int = 0,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into ``dest_dir`` and return its path.

    ``files`` maps paths inside the wheel (``pkg/__init__.py``) to their content.
    ``pad_to`` adds an incompressible, seeded ``padding.bin`` to the dist-info
    folder so that the wheel is at least ``pad_to`` bytes (for download and
    resume tests); nothing importable changes.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    filename = wheel_filename(name, version, tag)
    dist_info = f"{filename.split('-')[0]}-{version.replace('-', '_')}.dist-info"
    entries: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in (files or {}).items()}
    if pad_to > 0:
        entries[f"{dist_info}/padding.bin"] = random.Random(filename).randbytes(pad_to)
    entries[f"{dist_info}/METADATA"] = _metadata(name, version, requires, requires_python).encode()
    entries[f"{dist_info}/WHEEL"] = _wheel_info(tag).encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in entries.items():
        writer.writerow([path, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    entries[f"{dist_info}/RECORD"] = record.getvalue().encode()

    target = dest_dir / filename
    with zipfile.ZipFile(target, "w") as zf:
        for path, data in entries.items():
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED if path.endswith("padding.bin") else zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return target


def fake_torch(dest_dir: Path, version: str, *, cuda: str | None, arch_list: Sequence[str] | None = None,
               pad_to: int = 0) -> Path:  # fmt: skip
    """A torch wheel reporting ``version`` and ``cuda`` (``None``: a CPU build); no dependencies.

    ``arch_list`` defaults to what the real build for that CUDA carries (:data:`ARCH_LISTS`).
    """
    arches = list(arch_list if arch_list is not None else ARCH_LISTS.get(cuda or "", ()))
    cudnn = CUDNN_VERSIONS.get(cuda or "")
    files = {
        "torch/__init__.py": (
            '"""Fake torch for tests: version and CUDA queries only."""\n'
            "from torch import backends, cuda, version\n"
            "from torch.version import __version__\n"
        ),
        "torch/version.py": (
            "from typing import Optional\n\n"
            '__all__ = ["__version__", "debug", "cuda", "git_version", "hip"]\n'
            f"__version__ = {version!r}\n"
            "debug = False\n"
            f"cuda: Optional[str] = {cuda!r}\n"
            "git_version = '0000000000000000000000000000000000000000'\n"
            "hip: Optional[str] = None\n"
        ),
        "torch/cuda/__init__.py": (
            f"_ARCH_LIST = {arches!r}\n\n\n"
            "def is_available() -> bool:\n    return False\n\n\n"
            "def device_count() -> int:\n    return 0\n\n\n"
            "def get_arch_list() -> list:\n    return list(_ARCH_LIST)\n"
        ),
        "torch/backends/__init__.py": "from torch.backends import cudnn\n",
        "torch/backends/cudnn/__init__.py": f"def version():\n    return {cudnn!r}\n",
    }
    return build_wheel(dest_dir, "torch", version, files=files, requires_python=">=3.9", pad_to=pad_to)


def fake_torchvision(dest_dir: Path, version: str, *, torch: str, cuda: str | None) -> Path:
    """A torchvision wheel pinning ``torch==<public version of torch>``, as the real ones do."""
    files = {
        "torchvision/__init__.py": "import torch  # noqa: F401\nfrom torchvision.version import __version__\n",
        "torchvision/version.py": f"__version__ = {version!r}\ngit_version = '0' * 40\ncuda = {cuda!r}\n",
    }
    requires = [f"torch=={public_version(torch)}"]
    return build_wheel(dest_dir, "torchvision", version, requires=requires, files=files, requires_python=">=3.9")


_XFORMERS_CPP_LIB = '''\
"""Build metadata check, as xformers/_cpp_lib.py does it (the fake has no binary)."""
import json
import logging
import platform
from pathlib import Path

import torch

logger = logging.getLogger("xformers")
_build_metadata = json.loads((Path(__file__).parent / "cpp_lib.json").read_text())
_cpp_library_load_exception = None

if _build_metadata["version"]["torch"] != torch.__version__:
    v = _build_metadata["version"]
    _cpp_library_load_exception = RuntimeError(
        "xFormers can't load C++/CUDA extensions. xFormers was built for:\\n"
        f"    PyTorch {v['torch']} with CUDA {v['cuda']} (you have {torch.__version__})\\n"
        f"    Python  {v['python']} (you have {platform.python_version()})\\n"
        "  Please reinstall xformers (see https://github.com/facebookresearch/xformers#installing-xformers)\\n"
        "  Memory-efficient attention, SwiGLU, sparse and more won't be available."
    )
    logger.warning(
        f"WARNING[XFORMERS]: {_cpp_library_load_exception}\\n  Set XFORMERS_MORE_DETAILS=1 for more details"
    )
'''


def cuda_code(torch_version: str) -> int | None:
    """The CUDA of a torch build as xformers records it, ``major*100+minor``: ``2.1.2+cu121`` -> 1201."""
    m = re.search(r"\+cu(\d+)(\d)$", torch_version)
    return int(m[1]) * 100 + int(m[2]) if m else None


def fake_xformers(dest_dir: Path, version: str, *, built_for_torch: str) -> Path:
    """An xformers wheel built for ``built_for_torch`` (in ``cpp_lib.json``), pinning its public version."""
    build = {
        "version": {
            "torch": built_for_torch,
            "python": platform.python_version(),
            "cuda": cuda_code(built_for_torch),
            "hip": None,
        },
        "env": {"XFORMERS_BUILD_TYPE": "Release"},
    }
    files = {
        "xformers/__init__.py": "from xformers import _cpp_lib  # noqa: F401\nfrom xformers.version import __version__\n",
        "xformers/version.py": f"__version__ = {version!r}\ngit_version = '0' * 40\n",
        "xformers/cpp_lib.json": json.dumps(build, indent=2) + "\n",
        "xformers/_cpp_lib.py": _XFORMERS_CPP_LIB,
    }
    requires = [f"torch=={public_version(built_for_torch)}"]
    return build_wheel(dest_dir, "xformers", version, requires=requires, files=files, requires_python=">=3.9")


def fake_torch_stack(
    dest_dir: Path,
    *,
    torch: str = "2.7.1+cu128",
    torchvision: str = "0.22.1+cu128",
    xformers: str | None = "0.0.31",
    cuda: str | None = "12.8",
    arch_list: Sequence[str] | None = None,
    xformers_built_for_torch: str | None = None,
    pad_torch_to: int = 0,
) -> list[Path]:
    """torch, torchvision and (unless ``xformers`` is None, as on CPU indexes) xformers wheels.

    ``xformers_built_for_torch`` (default: ``torch``) makes an xformers that
    warns at import beside ``torch``; it pins that torch's public version, so
    ``2.7.1+cu126`` installs cleanly next to ``2.7.1+cu128`` and still warns.
    """
    wheels = [
        fake_torch(dest_dir, torch, cuda=cuda, arch_list=arch_list, pad_to=pad_torch_to),
        fake_torchvision(dest_dir, torchvision, torch=torch, cuda=cuda),
    ]
    if xformers is not None:
        wheels.append(fake_xformers(dest_dir, xformers, built_for_torch=xformers_built_for_torch or torch))
    return wheels


def small_packages(dest_dir: Path) -> list[Path]:
    """Ordinary packages for resolver tests, each importable with a ``__version__``.

    ``tinypkg`` 1.0 (and 2.0, which needs Python >=3.99, so installers must
    skip it), ``needs-torch`` 1.0 (``torch>=2.0``), ``needs-new-torch`` 1.0 (``torch>=2.8``).
    """
    specs: list[tuple[str, str, list[str], str | None]] = [
        ("tinypkg", "1.0", [], ">=3.8"),
        ("tinypkg", "2.0", [], ">=3.99"),
        ("needs-torch", "1.0", ["torch>=2.0"], ">=3.9"),
        ("needs-new-torch", "1.0", ["torch>=2.8"], ">=3.9"),
    ]
    wheels = []
    for name, version, requires, requires_python in specs:
        module = name.replace("-", "_")
        files = {f"{module}/__init__.py": f"__version__ = {version!r}\n"}
        wheels.append(build_wheel(dest_dir, name, version, requires=requires, files=files,
                                  requires_python=requires_python))  # fmt: skip
    return wheels


def relabel_wheel(src: Path, dest_dir: Path, version: str) -> Path:
    """A copy of a real wheel under another version, as PyPI names the same build (``2.13.0+cpu`` -> ``2.13.0``).

    The file name, the ``.dist-info`` folder, ``METADATA``'s ``Version`` and the ``RECORD`` (the renamed paths, the
    new ``METADATA``'s hash and size) change; every other member is copied byte for byte, still compressed, so a
    200 MB torch wheel takes seconds.  uv and pip install the copy as ``<name>==<version>``.
    """
    with zipfile.ZipFile(src) as zin:
        infos = zin.infolist()
        old = next(i.filename.split("/", 1)[0] for i in infos if i.filename.split("/", 1)[0].endswith(".dist-info"))
        name, old_version = old[: -len(".dist-info")].rsplit("-", 1)
        new = f"{name}-{version}.dist-info"
        meta = zin.read(f"{old}/METADATA").decode()
        meta = re.sub(r"(?m)^Version: .*$", f"Version: {version}", meta, count=1).encode()
        record_rows = list(csv.reader(io.StringIO(zin.read(f"{old}/RECORD").decode())))
    rows = []
    for row in record_rows:
        if row and row[0].startswith(old + "/"):
            row[0] = new + row[0][len(old) :]
            if row[0] == f"{new}/METADATA":
                row[1:3] = [_record_hash(meta), str(len(meta))]
        rows.append(row)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    replaced = {f"{new}/METADATA": meta, f"{new}/RECORD": out.getvalue().encode()}
    filename = src.name.replace(f"{name}-{old_version}-", f"{name}-{version}-", 1)
    if filename == src.name:
        raise ValueError(f"{src.name}: the file name does not carry the version {old_version}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / filename
    tmp = target.with_name(target.name + ".part")
    with open(src, "rb") as raw, open(tmp, "wb") as fh:
        central = []
        for info in infos:
            path = info.filename
            if path.startswith(old + "/"):
                path = new + path[len(old) :]
            if path in replaced:
                data = replaced[path]
                packer = zlib.compressobj(6, zlib.DEFLATED, -15)
                body, method, crc, size = packer.compress(data) + packer.flush(), 8, zlib.crc32(data), len(data)
            else:
                raw.seek(info.header_offset)
                head = raw.read(30)
                name_len, extra_len = struct.unpack("<HH", head[26:30])
                raw.seek(info.header_offset + 30 + name_len + extra_len)
                body, method, crc, size = raw.read(info.compress_size), info.compress_type, info.CRC, info.file_size
            central.append(_zip_entry(fh, path.encode(), body, method, crc, size, info))
        start = fh.tell()
        for entry in central:
            fh.write(entry)
        end = fh.tell()
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), end - start, start, 0))
    tmp.replace(target)
    return target


def _zip_entry(fh: io.BufferedWriter, name: bytes, body: bytes, method: int, crc: int, size: int,
               info: zipfile.ZipInfo) -> bytes:  # fmt: skip
    """Write one member's local header and body at the file's position; returns its central directory record."""
    y, mo, d, h, mi, s = info.date_time
    dos_time, dos_date = (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d
    offset, flags = fh.tell(), 0x800  # names in UTF-8; sizes in the header (no data descriptor)
    fh.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, dos_time, dos_date, crc, len(body), size,
                         len(name), 0) + name + body)  # fmt: skip
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, flags, method, dos_time, dos_date, crc,
                       len(body), size, len(name), 0, 0, 0, 0, info.external_attr, offset) + name  # fmt: skip
