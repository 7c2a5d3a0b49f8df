"""The structural log reader: mojibake, events and chains, error numbers in any language, facts checked.

The log lines here are quoted from the real-logs corpus (tests/data/real-logs) or are
pip's and uv's own wording; the expectations are what the threads concluded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from launcher.cli.context import Context
from launcher.cli.diagnose_cmd import diagnose
from launcher.diagnosis import mojibake
from launcher.diagnosis.logread import read, unescape
from launcher.diagnosis.machine import MachineFacts, from_probe
from launcher.doctor.scanner import scan
from tests.support.real_logs import CORPUS, parse


def corpus_text(rel: str) -> str:
    return parse(CORPUS / rel).text


@pytest.mark.parametrize(
    ("shown", "meant"),
    [("C:\\Users\\└эфЁхщ\\AppData", "C:\\Users\\Андрей\\AppData"),  # cp1251 shown as cp866
     ("Γ£à All packages installed successfully!", "✅ All packages installed successfully!"),  # UTF-8 as cp437
     ("C:\\Users\\╨Р╨╗╤М╤В\\AppData", "C:\\Users\\Альт\\AppData")],  # UTF-8 as cp866
)  # fmt: skip
def test_mojibake_is_repaired(shown: str, meant: str) -> None:
    assert mojibake.repair(shown) == meant


@pytest.mark.parametrize(
    "text",
    ["找不到指定的模块。", "Не найден указанный модуль.", "Le module spécifié est introuvable", "A:\\Sin Sincronización\\Chrome",
     "100%|██████████| 5/5 [00:00<00:00,  6.10it/s]", "━━━╸━━━━━━━━ 0.3/2.6 GB 4.1 MB/s"],
)  # fmt: skip
def test_text_that_is_right_is_left_alone(text: str) -> None:
    assert mojibake.repair(text) == text and not mojibake.find(text)


def test_exceptions_are_read_with_their_frames_and_chain() -> None:
    view = read(corpus_text("port-in-use/001-gpt_academic.log"))
    first, last = view.events[-2], view.events[-1]
    assert (first.type, first.numbers, first.frames[0].package) == ("OSError", (99,), "gradio")
    assert last.type == "OSError" and last.message.startswith("Port 40325 is in use") and last.link == "context"
    assert [f.func for f in last.frames] == ["<module>", "launch", "start_server"]


def test_prefixes_wrapping_and_escapes_do_not_hide_the_exception() -> None:
    docker = read(corpus_text("torch-no-gpu/002-a1111.log")).final
    assert docker is not None and docker.type == "AssertionError" and "not able to use GPU" in docker.message
    label = read("OSError:\nCannot find empty port in range: 6006-6006.").final
    assert label is not None and label.message.startswith("Cannot find empty port")
    assert unescape("a\\r\\n  \\u00d7 b\\r\\n  c") == "a\n  × b\n  c"


@pytest.mark.parametrize(
    "rel", ["dll/002-MaterialSearch.log", "dll/003-a1111.log", "dll/005-sunone_aimbot.log", "dll/007-csm.log"]
)
def test_the_loader_error_number_is_understood_in_any_language(rel: str) -> None:
    assert scan(corpus_text(rel))[0].code == "DLL_LOAD_FAILED"


def test_a_small_page_file_is_not_taken_for_a_missing_dll() -> None:
    codes = [f.code for f in scan(corpus_text("pagefile/002-pytorch-segmentation.log"))]
    assert codes == ["PAGEFILE_TOO_SMALL"]


def test_a_torch_index_outage_is_a_network_problem_not_a_python_one() -> None:
    pip = ("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by "
           "'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f3a>: Failed to establish a new "
           "connection: [Errno 111] Connection refused')': /whl/cpu/torch/\n"
           "ERROR: Could not find a version that satisfies the requirement torch==2.7.1+cpu (from versions: none)\n"
           "ERROR: No matching distribution found for torch==2.7.1+cpu\n")  # fmt: skip
    assert [f.code for f in scan(pip)] == ["MIRROR_UNREACHABLE"]
    uv = ("error: Failed to fetch: `https://download.pytorch.org/whl/cpu/torch/`\n  Caused by: Request failed after 3 retries\n"
          "  Caused by: error sending request for url (https://download.pytorch.org/whl/cpu/torch/)\n"
          "  Caused by: tcp connect error: Connection refused (os error 111)\n")  # fmt: skip
    assert [f.code for f in scan(uv)] == ["MIRROR_UNREACHABLE"]
    # Without a network line, a local-label pin listed as "none" still means the PyTorch index was not read (pip
    # with --retries 0 says nothing more): never a Python problem.  A plain pin there is this Python having no torch.
    quiet = pip.split("\n", 1)[1]
    assert "PYTHON_VERSION_UNSUPPORTED" not in [f.code for f in scan(quiet)]
    plain = quiet.replace("2.7.1+cpu", "2.7.1")
    assert [f.code for f in scan(plain)] == ["PYTHON_VERSION_UNSUPPORTED"]


def test_the_python_the_log_states_is_held_against_the_torch_it_asks_for() -> None:
    found = scan(corpus_text("python-version/004-a1111.log"))[0]  # Python 3.11.1 asking for torch 1.12.1
    assert (found.code, found.values["have_py"], found.values["torch"], found.confidence) == (
        "PYTHON_VERSION_UNSUPPORTED",
        "3.11",
        "1.12",
        "high",
    )
    bits = scan(corpus_text("python-version/002-a1111.log"))[0]  # "[MSC v.1933 32 bit (Intel)]"
    assert bits.values["have_py"] == "3.10 (32-bit)" and "3.10 (32-bit)" in bits.detail


def test_a_finding_the_machine_contradicts_is_reworded_and_a_guess_dropped() -> None:
    machine = MachineFacts(python="3.10.11", torch="2.7.1+cu128", torch_cuda="12.8", cuda_available=True)
    log = corpus_text("cpu-torch/005-comfyui.log")
    zh = scan(log, "zh", machine=machine)[0]
    assert (
        zh.code == "TORCH_CPU_BUILD" and zh.confidence == "low" and "2.7.1+cu128" in zh.detail and "注意" in zh.detail
    )
    assert "does not match the log" in scan(log, "en", machine=machine)[0].detail
    assert scan(log)[0].confidence == "high"
    guess = (
        "ERROR: Could not find a version that satisfies the requirement torch==2.1.2 (from versions: 2.0.1, 2.2.0)\n"
    )
    assert [f.confidence for f in scan(guess)] == ["low"]
    assert scan(guess, machine=machine) == []  # a low-confidence guess against a supported Python here: dropped


def test_the_probe_facts_become_machine_facts() -> None:
    facts = {"python": "3.10.11", "torch": {"version": "2.7.1+cu128", "cuda": "12.8", "cuda_available": True,
                                            "arch_list": ["sm_86", "sm_120"], "devices": ["NVIDIA GeForce RTX 5090"]}}  # fmt: skip
    m = from_probe(facts)
    assert (
        m is not None and m.torch_cuda == "12.8" and "sm_120" in m.arch_list and m.gpus == ("NVIDIA GeForce RTX 5090",)
    )
    assert from_probe({}) is None


UNKNOWN = ('Traceback (most recent call last):\n  File "D:\\sd\\venv\\lib\\site-packages\\insightface\\app\\face_analysis.py",'
           ' line 59, in prepare\n    model.prepare(ctx_id)\nKeyError: \'landmark_2d_106\'\n')  # fmt: skip


def test_an_unknown_failure_is_summarised_not_called_fine() -> None:
    assert scan(UNKNOWN) == []
    en = scan(UNKNOWN, "en", summary=True)
    assert [f.code for f in en] == ["LOG_SUMMARY"] and en[0].severity == "warning"
    assert "KeyError: 'landmark_2d_106'" in en[0].detail and "insightface" in en[0].detail and "sysinfo" in en[0].fix
    zh = scan(UNKNOWN, "zh", summary=True)[0]
    assert "最后的错误" in zh.detail and "求助时请附上" in zh.fix
    assert scan("Running on local URL:  http://127.0.0.1:7860\n", summary=True) == []


def test_the_diagnose_command_asks_the_probe_and_says_how_sure_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "console.log"
    log.write_text(corpus_text("cpu-torch/005-comfyui.log"), encoding="utf-8")
    seen: list[object] = []

    def probe(bundle: object) -> MachineFacts:
        seen.append(bundle)
        return MachineFacts(torch="2.7.1+cu128", torch_cuda="12.8", cuda_available=True)

    ctx = Context(bundle=tmp_path, lang="en")  # type: ignore[arg-type]
    assert diagnose(ctx, argparse.Namespace(file=str(log), json=True), probe=probe) == 2
    finding = json.loads(capsys.readouterr().out)["findings"][0]
    assert seen == [tmp_path] and finding["code"] == "TORCH_CPU_BUILD" and finding["confidence"] == "low"
    assert diagnose(ctx, argparse.Namespace(file=str(log), json=False), probe=lambda b: None) == 2
    assert "(likely)" in capsys.readouterr().out


def test_the_summary_names_the_program_and_the_exception_the_failure_came_from() -> None:
    log = ('Traceback (most recent call last):\n  File "D:\\ComfyUI_windows_portable\\ComfyUI\\custom_nodes\\x\\nodes.py", line 3, in load\n'
           "KeyError: 'model'\n\nDuring handling of the above exception, another exception occurred:\n\n"
           'Traceback (most recent call last):\n  File "D:\\ComfyUI_windows_portable\\ComfyUI\\execution.py", line 1, in execute\n'
           "ValueError: bad node\n")  # fmt: skip
    found = scan(log, "en", summary=True)[0]
    assert found.values["tool"] == "ComfyUI portable" and found.values["root"] == "KeyError: 'model'"
    assert "ComfyUI portable" in found.detail and "while handling KeyError: 'model'" in found.detail
    assert "它源于更早的错误：KeyError: 'model'" in scan(log, "zh", summary=True)[0].detail
