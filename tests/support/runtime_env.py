"""A bundle environment that is the development venv in disguise.

``env/runtime`` gets the venv's ``pyvenv.cfg``, a ``bin/python`` link and a
``lib`` link, plus the builder's stamp for the ``cpu`` pack, so the builder
sees an environment that already matches the pack (the dev venv holds the
same pins) and the runtime starts in it with everything it needs, without
installing 1.5 GB per test.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

STAMP = "yijian-env.json"


def fake_runtime_env(bundle: Path, pack: str = "cpu") -> Path:
    venv = Path(sys.prefix)
    env = bundle / "env" / "runtime"
    (env / "bin").mkdir(parents=True)
    shutil.copy2(venv / "pyvenv.cfg", env / "pyvenv.cfg")
    (env / "bin" / "python").symlink_to(venv / "bin" / "python")
    (env / "lib").symlink_to(venv / "lib")
    (env / STAMP).write_text(json.dumps({"pack": pack, "note": "test stand-in: the dev venv"}), encoding="utf-8")
    return env
