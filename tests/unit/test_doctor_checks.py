"""The doctor's rules against injected facts: every platform, network state and library, without the machine.

The CLI tests (tests/functional/test_doctor_*.py) prove the facts are gathered; here each check meets the cases
it decides between: Windows and Linux, fresh and stale logs, a mirror that failed or a certificate that did.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from bootstrap.layout import Bundle
from launcher.doctor.checks import CHECKS, Facts, evaluate, load_actions, load_rules
from launcher.doctor.envprobe import EnvFacts
from launcher.doctor.network import Endpoint, NetworkFacts
from launcher.doctor.scanner import Finding, load_signatures
from launcher.hardware.nvidia import Gpu, Hardware
from launcher.hardware.system import HardwareReport, SystemFacts
from launcher.models.library import scan
from tests.support.fake_models import HTML_PAGE, LFS_POINTER, SD15_CKPT, write_safetensors
from tests.support.hermetic import REPO

# The finding codes issue 6 names as the public contract of --json.
ISSUE_CODES = {
    "XFORMERS_TORCH_MISMATCH", "XFORMERS_MISSING", "TRITON_MISSING", "TORCH_CPU_BUILD", "TORCH_CUDA_UNAVAILABLE",
    "DRIVER_TOO_OLD", "GPU_ARCH_UNSUPPORTED", "NO_NVIDIA_GPU", "PYTHON_VERSION_UNSUPPORTED", "CUDA_OOM",
    "MODEL_FILE_CORRUPT", "UNSAFE_PICKLE_CHECKPOINT", "WEIGHTS_ONLY_LOAD_FAILED", "DLL_LOAD_FAILED",
    "MIRROR_UNREACHABLE", "SSL_ERROR", "HF_UNREACHABLE", "HF_XET_BYPASSES_MIRROR", "PORT_IN_USE", "NON_ASCII_PATH",
    "PATH_TOO_LONG", "DISK_LOW", "RAM_LOW", "PIP_CONFIG_LEAK", "PYTHONPATH_SET", "DEPENDENCY_CONFLICT",
}  # fmt: skip
RTX3060 = Gpu(0, "NVIDIA GeForce RTX 3060", (8, 6), 12288, 11000)
GTX1650 = Gpu(0, "NVIDIA GeForce GTX 1650", (7, 5), 4096, 3900)
CUDA_TORCH = {"version": "2.7.1+cu128", "cuda": "12.8", "cuda_available": True, "arch_list": ["sm_75", "sm_86"]}
OOM = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total capacity of "
       "6.00 GiB of which 312.00 MiB is free.\n")  # fmt: skip


def bundle_at(root: Path) -> Bundle:
    root.mkdir(parents=True, exist_ok=True)
    return Bundle(root=root, code=REPO)


def facts(bundle: Bundle, *, os_name: str = "linux", gpus: tuple[Gpu, ...] = (), env: EnvFacts | None = None,
          environ: dict[str, str] | None = None, **kw: Any) -> Facts:  # fmt: skip
    nvidia = Hardware(os_name, "given" if gpus else "none", "572.16" if gpus else None, "12.8" if gpus else None, gpus)
    system = SystemFacts(os_name, "test", "", 8, 32768, 16000, str(bundle.root), 500_000)
    env = env or EnvFacts("skipped", str(bundle.env_dir / "runtime"))
    return Facts(bundle, HardwareReport(nvidia, system), env, None, 1, environ=environ or {}, **kw)


def found(f: Facts, lang: str = "en") -> dict[str, Finding]:
    return {x.code: x for x in evaluate(f, lang)}


def ok_env(bundle: Bundle, **more: Any) -> EnvFacts:
    packages = {"torch": "2.7.1+cu128", "triton": "3.3.1", "xformers": None}
    packages.update(more.pop("packages", {}))
    return EnvFacts("ok", str(bundle.env_dir / "runtime"), facts={"torch": CUDA_TORCH, "packages": packages, **more})


# --- the rules as data ---------------------------------------------------------------------------------------


def test_every_code_of_the_issue_is_a_rule_or_a_signature() -> None:
    codes = {r["code"] for r in load_rules()} | {s.code for s in load_signatures()}
    assert ISSUE_CODES <= codes, ISSUE_CODES - codes


def test_every_rule_has_a_check_both_languages_and_a_known_action() -> None:
    rules = load_rules()
    assert {r["code"] for r in rules} == set(CHECKS)
    actions = load_actions()
    for r in rules:
        assert r["severity"] in ("error", "warning", "info") and set(r.get("severity_on", {}).values()) <= {
            "error",
            "warning",
            "info",
        }
        for zh, en in ((r["title_zh"], r["title_en"]), (r["detail_zh"], r["detail_en"]), (r["fix_zh"], r["fix_en"])):
            assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en), r["code"]
            assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), r["code"]
        template = r.get("action", "")
        if "{" not in template:
            assert template == "" or template in actions, r["code"]
    # The templated ones, with every value their checks give.
    assert {f"vram-{p}" for p in ("medvram", "lowvram")} | {"use-hf-mirror"} <= set(actions)
    for a in actions.values():
        assert a["kind"] in ("config", "port", "mirrors", "environment") and isinstance(a["safe"], bool)
        assert re.search(r"[\u4e00-\u9fff]", a["title_zh"]) and not re.search(r"[\u4e00-\u9fff]", a["title_en"])


# --- the environment -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "values"),
    [
        ("ImportError: DLL load failed while importing _C: The specified module could not be found.", {"module": "_C"}),
        ('OSError: [WinError 126] The specified module could not be found. Error loading "C:\\y\\env\\runtime\\Lib\\'
         'site-packages\\torch\\lib\\c10.dll" or one of its dependencies.', {"library": "C:\\y\\env\\runtime\\Lib\\site-packages\\torch\\lib\\c10.dll"}),
        ("ImportError: libcudart.so.12: cannot open shared object file: No such file or directory",
         {"library": "libcudart.so.12"}),
    ],
)  # fmt: skip
def test_a_torch_that_cannot_load_its_libraries(tmp_path: Path, error: str, values: dict[str, str]) -> None:
    b = bundle_at(tmp_path / "b")
    env = EnvFacts("ok", str(b.env_dir / "runtime"), facts={"torch_error": error, "packages": {"torch": "2.7.1"}})
    first = evaluate(facts(b, os_name="windows", gpus=(RTX3060,), env=env))[0]
    assert first.code == "DLL_LOAD_FAILED" and first.severity == "error" and first.action == ""
    assert values.items() <= first.values.items() and first.values["error"] in error
    assert "Visual C++" in first.fix and "setup --rebuild" in first.fix


def test_a_crashed_interpreter_leads_with_env_broken_and_names_the_dll(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    env = EnvFacts(
        "crashed", str(b.env_dir / "runtime"), "exit code -11: ImportError: DLL load failed while importing _C"
    )
    codes = [x.code for x in evaluate(facts(b, env=env))]
    assert codes[:2] == ["ENV_BROKEN", "DLL_LOAD_FAILED"]


def test_triton_missing(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    no_triton = ok_env(b, packages={"triton": None})
    linux = found(facts(b, gpus=(RTX3060,), env=no_triton))["TRITON_MISSING"]
    assert linux.severity == "info" and linux.values == {"torch": "2.7.1+cu128", "os": "linux"}
    assert "TRITON_MISSING" not in found(facts(b, os_name="windows", gpus=(RTX3060,), env=no_triton))  # normal there
    with_xformers = ok_env(b, packages={"triton": None, "xformers": "0.0.31"})
    assert "TRITON_MISSING" in found(facts(b, os_name="windows", gpus=(RTX3060,), env=with_xformers))
    assert "TRITON_MISSING" not in found(facts(b, gpus=(RTX3060,), env=ok_env(b)))  # installed
    assert "TRITON_MISSING" not in found(facts(b, env=no_triton))  # no GPU: nothing to compile for
    windows = ok_env(b, packages={"triton": None, "triton-windows": "3.3.1.post19", "xformers": "0.0.31"})
    assert "TRITON_MISSING" not in found(facts(b, os_name="windows", gpus=(RTX3060,), env=windows))


# --- the last run ---------------------------------------------------------------------------------------------


def runtime_log(b: Bundle, text: str, age: float = 0) -> Path:
    log = b.logs_dir / "runtime-console.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(text, encoding="utf-8")
    when = time.time() - age
    os.utime(log, (when, when))
    return log


def test_cuda_oom_advice_follows_the_vram(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    runtime_log(b, "Loading model\n" + OOM)
    six = found(facts(b, os_name="windows"), "zh")["CUDA_OOM"]  # no GPU seen now: the log's 6 GiB
    assert six.values == {"log": "runtime-console.log", "requested": "1.50 GiB", "vram_gib": "6", "preset": "medvram",
                          "current": "auto"}  # fmt: skip
    assert six.action == "vram-medvram" and "config set launch.vram medvram" in six.fix and "1.50 GiB" in six.detail
    assert found(facts(b, gpus=(GTX1650,)))["CUDA_OOM"].action == "vram-lowvram"  # 4 GB: straight to lowvram
    assert found(facts(b, gpus=(RTX3060,)))["CUDA_OOM"].values["vram_gib"] == "12"


def test_cuda_oom_escalates_only_after_a_new_run(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    log = runtime_log(b, OOM, age=60)
    b.config_file.write_text('[launch]\nvram = "medvram"\n', encoding="utf-8")  # lowered after that run
    os.utime(b.config_file, (time.time() - 30, time.time() - 30))
    medvram = {"launch.vram": "medvram"}
    assert "CUDA_OOM" not in found(facts(b, settings=medvram))
    os.utime(log)  # a run with medvram ran out again
    assert found(facts(b, settings=medvram))["CUDA_OOM"].action == "vram-lowvram"


def test_only_a_recent_runtime_log_counts(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    runtime_log(b, OOM, age=8 * 24 * 3600)
    assert "CUDA_OOM" not in found(facts(b))
    runtime_log(b, "Running on local URL:  http://127.0.0.1:7860\n")
    assert "CUDA_OOM" not in found(facts(b))


# --- the model library ---------------------------------------------------------------------------------------


def test_damaged_and_pickle_models(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    sd = b.models_dir / "Stable-diffusion"
    write_safetensors(sd / "good.safetensors", SD15_CKPT)
    cut = write_safetensors(sd / "cut.safetensors", SD15_CKPT)
    os.truncate(cut, cut.stat().st_size // 2)
    (sd / "page.safetensors").write_bytes(HTML_PAGE)
    (b.models_dir / "Lora" / "pointer.safetensors").parent.mkdir(parents=True)
    (b.models_dir / "Lora" / "pointer.safetensors").write_bytes(LFS_POINTER)
    (sd / "old.ckpt").write_bytes(b"PK\x03\x04" + bytes(2048))
    (b.models_dir / "ESRGAN").mkdir(parents=True)
    (b.models_dir / "ESRGAN" / "4x.pth").write_bytes(b"PK\x03\x04" + bytes(2048))  # upscalers are all .pth: not flagged
    got = found(facts(b, models=scan(b, with_hashes=False)))
    corrupt = got["MODEL_FILE_CORRUPT"]
    assert corrupt.severity == "warning" and corrupt.values["count"] == "3" and corrupt.action == ""
    assert corrupt.values["reasons"] == "html, lfs-pointer, truncated"
    assert "Stable-diffusion/cut.safetensors" in corrupt.values["files"]
    pickle = got["UNSAFE_PICKLE_CHECKPOINT"]
    assert pickle.severity == "warning" and pickle.values == {"count": "1", "files": "Stable-diffusion/old.ckpt"}
    assert ".safetensors" in pickle.fix
    assert not {"MODEL_FILE_CORRUPT", "UNSAFE_PICKLE_CHECKPOINT"} & set(found(facts(b, models=[])))


# --- paths and the user's environment ------------------------------------------------------------------------


def test_non_ascii_paths_warn_on_windows_only(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "整合包")
    b = Bundle(root=b.root, code=b.root)
    linux = found(facts(b))["NON_ASCII_PATH"]
    assert linux.severity == "info" and linux.values["paths"] == str(b.root)
    windows = found(facts(b, os_name="windows"))["NON_ASCII_PATH"]
    assert windows.severity == "warning"
    plain = bundle_at(tmp_path / "plain")
    temp = {"TEMP": "C:\\Users\\张三\\AppData\\Local\\Temp", "TMP": "C:\\Users\\张三\\AppData\\Local\\Temp"}
    assert found(facts(plain, os_name="windows", environ=temp))["NON_ASCII_PATH"].values["paths"] == temp["TEMP"]
    assert "NON_ASCII_PATH" not in found(facts(plain, environ=temp))  # TEMP matters to the Windows tool chain
    shared = {"models.extra_dirs": ["D:/秋叶/models"]}
    assert found(facts(plain, settings=shared))["NON_ASCII_PATH"].values["paths"] == "D:/秋叶/models"


def test_a_long_path_on_windows_without_long_paths(tmp_path: Path) -> None:
    b = Bundle(root=Path("C:/Users/someone/Downloads/" + "sd-webui-aki-v4.10-" * 5 + "/yijian"), code=REPO)
    hit = found(facts(b, os_name="windows", long_paths=False))["PATH_TOO_LONG"]
    assert hit.severity == "warning" and int(hit.values["length"]) > 100 and "LongPathsEnabled" in hit.fix
    assert "PATH_TOO_LONG" in found(facts(b, os_name="windows"))  # the registry could not be read: say it
    assert "PATH_TOO_LONG" not in found(facts(b, os_name="windows", long_paths=True))
    assert "PATH_TOO_LONG" not in found(facts(b, os_name="linux"))
    assert "PATH_TOO_LONG" not in found(facts(Bundle(root=Path("D:/yijian"), code=REPO), os_name="windows"))


def test_the_users_own_pythonpath(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    by_start_sh = {"YIJIAN_USER_PYTHONPATH": "/home/u/lib", "YIJIAN_USER_PYTHONHOME": "", "PYTHONPATH": str(b.code)}
    hit = found(facts(b, environ=by_start_sh))["PYTHONPATH_SET"]
    assert hit.severity == "warning" and hit.values == {"vars": "PYTHONPATH=/home/u/lib"} and "clears" in hit.detail
    assert "PYTHONPATH_SET" not in found(facts(b, environ={"PYTHONPATH": str(b.code)}))  # what Yijian set itself
    again = {"YIJIAN_USER_PYTHONPATH": str(b.code), "YIJIAN_USER_PYTHONHOME": ""}  # started from one of its children
    assert "PYTHONPATH_SET" not in found(facts(b, environ=again))
    direct = {"PYTHONPATH": f"{b.code}{os.pathsep}/opt/x", "PYTHONHOME": "/opt/py"}
    assert found(facts(b, environ=direct))["PYTHONPATH_SET"].values == {"vars": "PYTHONPATH=/opt/x; PYTHONHOME=/opt/py"}


def test_xet_bypasses_a_mirror_only_outside_yijian(tmp_path: Path) -> None:
    from launcher.mirrors.environ import child_environ
    from launcher.mirrors.plan import MirrorPlan
    from launcher.mirrors.sources import Source

    b = bundle_at(tmp_path / "b")
    mirror = {"HF_ENDPOINT": "https://hf-mirror.com"}
    hit = found(facts(b, environ=mirror))["HF_XET_BYPASSES_MIRROR"]
    assert hit.severity == "info" and hit.values["endpoint"] == "https://hf-mirror.com" and hit.action == ""
    assert "HF_XET_BYPASSES_MIRROR" not in found(facts(b, environ={**mirror, "HF_HUB_DISABLE_XET": "1"}))
    assert "HF_XET_BYPASSES_MIRROR" not in found(facts(b, environ={"HF_ENDPOINT": "https://huggingface.co"}))
    # What the rule says about Yijian's own children holds: with a mirror they always get HF_HUB_DISABLE_XET=1.
    hf = Source("huggingface", "hf-mirror", "https://hf-mirror.com", "hf", "hf-mirror", "hf-mirror")
    env, _ = child_environ(MirrorPlan({"huggingface": [hf]}), base=mirror)
    assert env["HF_HUB_DISABLE_XET"] == "1"


# --- the network ---------------------------------------------------------------------------------------------


def net(*endpoints: Endpoint, source: str = "cache") -> NetworkFacts:
    return NetworkFacts(source, endpoints)


def ep(channel: str, mid: str, ok: bool | None, error: str = "", *, chosen: bool = True, url: str = "") -> Endpoint:
    return Endpoint(channel, mid, url or f"https://{mid}.example/simple", mid == "huggingface", chosen, ok, error)


def test_a_mirror_in_use_that_failed(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    n = net(
        ep("pypi", "tuna", False, "connection refused"), ep("torch", "nju", True), ep("huggingface", "hf-mirror", True)
    )
    hit = found(facts(b, network=n))["MIRROR_UNREACHABLE"]
    assert hit.severity == "warning" and hit.action == "remeasure-mirrors" and hit.values["channels"] == "pypi"
    assert "tuna" in hit.detail and "connection refused" in hit.detail
    fine = net(ep("pypi", "tuna", True), ep("pypi", "bfsu", False, "HTTP 403", chosen=False))
    assert not {"MIRROR_UNREACHABLE", "SSL_ERROR"} & set(found(facts(b, network=fine)))  # a fallback failing is fine
    assert "MIRROR_UNREACHABLE" not in found(facts(b, network=net(ep("pypi", "tuna", None))))  # never measured


def test_certificate_failures(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    chosen = net(ep("pypi", "tuna", False, "TLS certificate error"), ep("huggingface", "hf-mirror", True))
    got = found(facts(b, network=chosen))
    assert got["SSL_ERROR"].severity == "error" and got["SSL_ERROR"].values == {
        "hosts": "tuna.example",
        "reason": "TLS certificate error",
    }
    assert "MIRROR_UNREACHABLE" not in got  # the root cause is the certificate, said once
    one_bad_mirror = net(ep("pypi", "tuna", True), ep("pypi", "sjtu", False, "TLS certificate error", chosen=False))
    assert "SSL_ERROR" not in found(facts(b, network=one_bad_mirror))
    everywhere = net(ep("pypi", "tuna", True), ep("pypi", "bfsu", False, "TLS certificate error", chosen=False),
                     ep("torch", "nju", False, "TLS error (WRONG_VERSION_NUMBER)", chosen=False))  # fmt: skip
    assert found(facts(b, network=everywhere))["SSL_ERROR"].values["hosts"] == "bfsu.example, nju.example"


def test_the_model_endpoint(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "b")
    official = found(facts(b, network=net(ep("huggingface", "huggingface", False, "timed out"))))["HF_UNREACHABLE"]
    assert official.action == "use-hf-mirror" and official.values["reason"] == "timed out"
    mirror = found(facts(b, network=net(ep("huggingface", "hf-mirror", False, "HTTP 429"))), "zh")["HF_UNREACHABLE"]
    assert mirror.action == "" and "hf-mirror" in mirror.detail  # switching to the mirror that failed helps nobody
    tls = net(ep("huggingface", "huggingface", False, "TLS certificate error"))
    assert [x.code for x in evaluate(facts(b, network=tls)) if "HF" in x.code or "SSL" in x.code] == ["SSL_ERROR"]
    assert not {"HF_UNREACHABLE", "SSL_ERROR", "MIRROR_UNREACHABLE"} & set(
        found(facts(b, network=net(source="offline")))
    )


def test_findings_are_ordered_by_severity_then_rank(tmp_path: Path) -> None:
    b = bundle_at(tmp_path / "整合包")
    n = net(ep("pypi", "tuna", False, "TLS certificate error"))
    got = evaluate(facts(b, network=n, environ={"YIJIAN_USER_PYTHONPATH": "/x"}))
    severities = [x.severity for x in got]
    assert severities == sorted(severities, key=("error", "warning", "info").index)
    assert got[0].code == "SSL_ERROR"


def test_a_missing_xformers_is_reported_only_where_the_pack_requires_it(tmp_path: Path) -> None:
    from dataclasses import replace

    from launcher.packs.catalog import load_packs

    packs = load_packs(REPO / "packs")
    b = bundle_at(tmp_path / "b")

    def with_pack(pack_id: str) -> dict[str, Finding]:
        f = facts(b, gpus=(RTX3060,), env=ok_env(b))
        return found(replace(f, pack=packs.require(pack_id)))

    assert with_pack("cu128")["XFORMERS_MISSING"].values == {"pack": "cu128", "want": "0.0.34"}
    # cu130's xformers is optional: kept only where it passed the build's self-check, so its absence is expected.
    assert "XFORMERS_MISSING" not in with_pack("cu130")
