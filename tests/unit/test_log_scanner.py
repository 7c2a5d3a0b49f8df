"""`yijian diagnose`: real-world logs in, the right finding codes and extracted values out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from launcher.doctor.scanner import clean, exit_code, load_signatures, scan
from tests.support.real_logs import corpus

LOGS = Path(__file__).resolve().parents[1] / "support" / "data" / "logs"

EXPECTED = {
    "xformers-mismatch.log": (
        "XFORMERS_TORCH_MISMATCH",
        {"built_torch": "2.1.2+cu121", "have_torch": "2.3.0+cu121", "built_cuda": "1201"},
    ),
    "rtx5090-cu121.log": ("GPU_ARCH_UNSUPPORTED", {"sm": "120"}),
    "cuda-oom.log": ("CUDA_OOM", {"requested": "1.50 GiB", "capacity": "6.00 GiB"}),
    "corrupt-safetensors.log": ("MODEL_FILE_CORRUPT", {"kind": "HeaderTooLarge"}),
    "ckpt-html.log": ("MODEL_FILE_CORRUPT", {"kind": "<"}),
    "driver-too-old.log": ("DRIVER_TOO_OLD", {"driver_cuda": "11040"}),
    "cpu-torch-and-more.log": ("TORCH_CPU_BUILD", {}),
    "dll-load.log": ("DLL_LOAD_FAILED", {"module": "_C"}),
    "dll-c10.log": ("DLL_LOAD_FAILED", {"library": "D:\\sd-webui-aki\\venv\\lib\\site-packages\\torch\\lib\\c10.dll"}),
    "libcudart.log": ("DLL_LOAD_FAILED", {"library": "libcudart.so.12"}),
    "port-in-use.log": ("PORT_IN_USE", {}),
    "hf-unreachable.log": ("HF_UNREACHABLE", {"endpoint": "https://huggingface.co"}),
    "ssl-error.log": ("SSL_ERROR", {}),
    "python-version.log": ("PYTHON_VERSION_UNSUPPORTED", {"torch": "2.1.2"}),
    "weights-only.log": ("WEIGHTS_ONLY_LOAD_FAILED", {}),
    "xformers-missing.log": ("XFORMERS_MISSING", {}),
}


@pytest.mark.parametrize(("name", "want"), EXPECTED.items(), ids=list(EXPECTED))
def test_each_log_leads_with_the_right_code_and_values(name: str, want: tuple[str, dict[str, str]]) -> None:
    findings = scan((LOGS / name).read_text(encoding="utf-8"))
    code, values = want
    assert findings and findings[0].code == code, [f.code for f in findings]
    for key, value in values.items():
        assert findings[0].values.get(key) == value, findings[0].values


def test_the_extracted_versions_reach_the_message_in_both_languages() -> None:
    text = (LOGS / "xformers-mismatch.log").read_text(encoding="utf-8")
    zh = scan(text, "zh")[0]
    assert "xformers 是为 torch 2.1.2+cu121 编译的，当前是 2.3.0+cu121" in zh.detail and zh.action == "repair-xformers"
    assert "built for torch 2.1.2+cu121, and this is 2.3.0+cu121" in scan(text, "en")[0].detail


def test_several_problems_in_one_log_are_all_reported_root_cause_first() -> None:
    findings = scan((LOGS / "cpu-torch-and-more.log").read_text(encoding="utf-8"))
    assert [f.code for f in findings] == ["TORCH_CPU_BUILD", "XFORMERS_TORCH_MISMATCH", "TRITON_MISSING"]
    assert exit_code(findings) == 2 and exit_code(findings[1:]) == 1 and exit_code([]) == 0


def test_colours_and_progress_bars_are_cleaned() -> None:
    assert clean("\x1b[33mhello\x1b[0m\n 10%\r 50%\r100% done\r\n") == "hello\n100% done\n"


def test_a_clean_log_has_no_findings() -> None:
    assert scan("Running on local URL:  http://127.0.0.1:7860\nModel loaded in 3.2s\n") == []


def test_every_signature_is_exercised_and_speaks_both_languages() -> None:
    sigs = load_signatures()
    covered = {code for code, _ in EXPECTED.values()} | {"TRITON_MISSING", "TORCH_CUDA_UNAVAILABLE"}
    covered |= {log.expected for log in corpus()}  # the real-logs corpus exercises the rest (test_real_logs.py)
    assert {s.code for s in sigs} <= covered | {"TORCH_CUDA_UNAVAILABLE"}
    for s in sigs:
        for zh, en in ((s.title_zh, s.title_en), (s.detail_zh, s.detail_en), (s.fix_zh, s.fix_en)):
            assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en), s.code
        assert s.severity in ("error", "warning", "info")


def test_torch_cannot_use_gpu_line_from_a1111() -> None:
    line = "RuntimeError: Torch is not able to use GPU; add --skip-torch-cuda-test to COMMANDLINE_ARGS variable to disable this check"
    assert scan(line)[0].code == "TORCH_CUDA_UNAVAILABLE"


def test_a_log_without_the_versions_gets_the_plain_explanation() -> None:
    found = scan("WARNING[XFORMERS]: xFormers was built for a different version of PyTorch or Python", "zh")[0]
    assert found.code == "XFORMERS_TORCH_MISMATCH" and "?" not in found.detail and "另一个版本" in found.detail
