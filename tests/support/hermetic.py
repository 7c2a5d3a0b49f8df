"""A sealed bundle root per test: the developer's machine never leaks in.

Every variable a tool reads for its config or cache (pip, uv, Hugging Face,
XDG, HOME) is cleared or pointed into the test's own folder, and pip's config
files are replaced by /dev/null.  The machine's own pip settings are kept in
:data:`MACHINE` for the few tests that need the local torch wheel folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Captured at import, before any test clears them.
MACHINE = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "UV_", "HF_"))}
MACHINE_WHEELS = MACHINE.get("PIP_FIND_LINKS", "")

LEAKY_PREFIXES = ("PIP_", "UV_", "HF_", "HUGGINGFACE_", "YIJIAN_", "CONDA_", "VIRTUAL_ENV", "PYTHON")
LEAKY_NAMES = (
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "NO_COLOR", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT",
)  # fmt: skip
# Kept on purpose: SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE.  They are the machine's trust store (this
# network inspects TLS), not pip or uv settings; users behind such a proxy need them exactly the same way.

KEEP = {"PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Sealed:
    """The folders of one sealed test."""

    base: Path
    home: Path  # HOME: must stay empty
    root: Path  # YIJIAN_HOME: the bundle root

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ as sealed now, plus ``extra``: for child processes."""
        env = dict(os.environ)
        env.update(extra)
        return env


def sealed_environ(base: Path) -> tuple[Sealed, dict[str, str | None]]:
    """The variables to set (str) or remove (None) to seal a test in ``base``."""
    home = base / "home"
    root = base / "bundle"
    for d in (home, root):
        d.mkdir(parents=True, exist_ok=True)
    changes: dict[str, str | None] = {}
    for key in os.environ:
        if (key.startswith(LEAKY_PREFIXES) and key not in KEEP) or key in LEAKY_NAMES:
            changes[key] = None
    changes.update(
        {
            "HOME": str(home),
            "USERPROFILE": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "UV_NO_CONFIG": "1",
            "HF_HOME": str(root / "cache" / "huggingface"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "YIJIAN_HOME": str(root),
            "YIJIAN_LANG": "en",
            "OMP_NUM_THREADS": "1",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
    )
    return Sealed(base=base, home=home, root=root), changes


def sealed_env_dict(base: Path) -> tuple[Sealed, dict[str, str]]:
    """A sealed copy of os.environ, for session fixtures (which run before ``sealed``)."""
    s, changes = sealed_environ(base)
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return s, env
