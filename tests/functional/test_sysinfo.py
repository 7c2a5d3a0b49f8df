"""`yijian sysinfo`: the diagnostic bundle has what helps and none of the secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from launcher.doctor.sysinfo import redact
from tests.support.bundle_copy import copy_bundle

SECRETS = ("s3cret-pass", "hunter22", "0123456789abcdef0123456789abcdef", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz1234",
           "eyJhbGciOiJIUzI1NiJ9.payload", "pw4mirror", "zzz987654", "alicewang",
           "ms7c1d0e2f3a4b5c6d", "hfcfg9q8w7e6r5t4y3")  # fmt: skip


def test_the_bundle_holds_facts_findings_config_and_logs_without_secrets(tmp_path: Path, no_nvidia_smi: str) -> None:
    bundle = copy_bundle(tmp_path / "b")
    (bundle / "config.toml").write_text(
        '[downloads]\ncivitai_token = "0123456789abcdef0123456789abcdef"\n'
        'modelscope_token = "ms7c1d0e2f3a4b5c6d"\nhf_token = "hfcfg9q8w7e6r5t4y3"\n'
        '[network]\nproxy = "http://alicewang:s3cret-pass@proxy.local:8080"\n'
        '[launch]\nauth = "admin:hunter22"\n',
        encoding="utf-8",
    )
    (bundle / "logs").mkdir()
    (bundle / "logs" / "runtime-console.log").write_text(
        "HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz1234\n"
        "GET https://civitai.com/api/download/models/1?token=zzz987654 -> 200\n"
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload\n"
        "pip: Looking in indexes: https://bob:pw4mirror@mirror.example/simple\n"
        "Loading weights from /home/alicewang/models/x.safetensors and C:\\Users\\alicewang\\Desktop\\y.ckpt\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB\n"
        "a tool echoed ms7c1d0e2f3a4b5c6d and hfcfg9q8w7e6r5t4y3 without a label\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "YIJIAN_HOME"}
    env.update(PYTHONPATH=str(bundle), USER="alicewang")
    out = tmp_path / "sysinfo.zip"
    r = subprocess.run([sys.executable, "-m", "launcher", "sysinfo", "--out", str(out), "--json"], capture_output=True,
                       text=True, env=env, cwd=bundle)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == str(out)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        everything = "\n".join(zf.read(n).decode("utf-8") for n in names)
        facts = json.loads(zf.read("facts.json"))
    assert {"README.txt", "facts.json", "config.toml", "logs/runtime-console.log"} <= set(names)
    assert "findings" in facts and "hardware" in facts and facts["hardware"]["nvidia"]["gpus"] == []
    for secret in SECRETS:
        assert secret not in everything, secret
    assert "CUDA out of memory" in everything and "/home/<user>/models" in everything  # the useful part stays


def test_redact_rules() -> None:
    assert redact('proxy = "socks5://u:p@127.0.0.1:1080"') == 'proxy = "socks5://***@127.0.0.1:1080"'
    assert redact("url https://u:p@h.example/x") == "url https://***@h.example/x"
    assert redact("token: hf_abcdefghijklmnopqrstuvwxyz") == "token: ***"
    assert redact("D:/Users/bob/a.png and /Users/bob/b.png", ["bob"]) == "D:/Users/<user>/a.png and /Users/<user>/b.png"
    assert redact("bobcat and bob", ["bob"]) == "bobcat and <user>"
