"""The reader's general rules: structure (chains, numbers, bytes, frames) decides, not one sentence per log.

Each log here is written for the test (not copied from the corpus): the same fact
in the words of different tools, and its near misses that must not match.
"""

from __future__ import annotations

import pytest

from launcher.diagnosis.logread import RUST_ERROR, read
from launcher.doctor.scanner import scan


def codes(text: str) -> list[str]:
    return [f.code for f in scan(text)]


def test_a_uv_error_chain_is_read_as_linked_causes_with_wrapped_lines_joined() -> None:
    text = ("12.5 error: Failed to download distributions\n"
            "12.5   Caused by: Failed to fetch wheel: numpy==2.1.0\n"
            "  ╰─▶ Failed to download distribution due to network timeout. Try increasing\n"
            "      UV_HTTP_TIMEOUT (current value: 30s).\n")  # fmt: skip
    chain = [e for e in read(text).events if e.type == RUST_ERROR]
    assert [e.link for e in chain] == ["", "cause", "cause"]
    assert chain[-1].message.endswith("UV_HTTP_TIMEOUT (current value: 30s).")
    assert codes(text) == ["MIRROR_UNREACHABLE"]


def test_a_lone_error_line_is_no_chain() -> None:
    assert not [e for e in read("error: RPC failed; curl 18 transfer closed\nfatal: early EOF\n").events
                if e.type == RUST_ERROR]  # fmt: skip


@pytest.mark.parametrize(
    "cause",
    ["HTTP status client error (403 Forbidden) for url (https://mirror.example/simple/six/)",
     "dns error: failed to lookup address information: Name or service not known",
     "request or response body error: operation timed out"],
)  # fmt: skip
def test_any_network_link_of_a_uv_chain_is_the_mirror(cause: str) -> None:
    assert codes(f"error: Failed to fetch: six\n  Caused by: {cause}\n") == ["MIRROR_UNREACHABLE"]


def test_a_uv_chain_that_is_no_network_failure_is_not_the_mirror() -> None:
    text = (
        "  × No solution found when resolving dependencies:\n  ╰─▶ Because foo was not found in the package registry\n"
    )
    assert "MIRROR_UNREACHABLE" not in codes(text)


@pytest.mark.parametrize(("byte", "kind"), [(118, "byte 118 'v'"), (60, "byte 60 '<'"), (10, "byte 10")])
def test_a_first_byte_that_is_no_pickle_opcode_means_the_file_is_not_the_model(byte: int, kind: str) -> None:
    text = ("_pickle.UnpicklingError: Weights only load failed. Re-running `torch.load` with `weights_only` set to "
            f"`False` will likely succeed.\nPlease file an issue: WeightsUnpickler error: Unsupported operand {byte}\n")  # fmt: skip
    found = scan(text)
    assert [f.code for f in found] == ["MODEL_FILE_CORRUPT", "WEIGHTS_ONLY_LOAD_FAILED"]
    # both stay possible: the byte says "no pickle", the thread may still end in weights_only=False
    assert found[0].values["kind"] == kind and found[0].confidence == found[1].confidence == "medium"


def test_an_unsupported_global_is_a_weights_only_problem_and_nothing_else() -> None:
    text = ("WeightsUnpickler error: Unsupported global: GLOBAL numpy.core.multiarray.scalar was not an allowed "
            "global by default.\n")  # fmt: skip
    found = scan(text)
    assert [(f.code, f.confidence) for f in found] == [("WEIGHTS_ONLY_LOAD_FAILED", "high")]
    # 0x80 (PROTO) is a pickle opcode: an operand the weights-only unpickler refuses is not proof of a broken file
    assert codes("WeightsUnpickler error: Unsupported operand 128\nWeights only load failed.") == [
        "WEIGHTS_ONLY_LOAD_FAILED"
    ]


def test_the_ssl_error_at_the_root_of_a_chain_comes_before_the_host_it_failed_to_reach() -> None:
    text = ("aiohttp.client_exceptions.ClientConnectorSSLError: Cannot connect to host example.org:443\n\n"
            "The above exception was the direct cause of the following exception:\n\n"
            "Traceback (most recent call last):\n"
            "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries "
            "exceeded with url: /x (Caused by SSLError(SSLEOFError(8, 'EOF occurred in violation of protocol')))\n")  # fmt: skip
    assert codes(text)[0] == "SSL_ERROR" and "HF_UNREACHABLE" in codes(text)


@pytest.mark.parametrize(
    "line",
    ["OSError: [WinError 10013] Попытка доступа к сокету методом, запрещенным правами доступа (server start)",
     "[Listen] [WinError 10013] 以一种访问权限不允许的方式做了一个访问套接字的尝试。",
     "ERROR: [Errno 10048] 服务启动失败: 通常每个套接字地址(协议/网络地址/端口)只允许使用一次。"],
)  # fmt: skip
def test_a_port_that_cannot_be_taken_is_known_by_its_number_in_any_language(line: str) -> None:
    assert codes(line) == ["PORT_IN_USE"]


def test_wsaeacces_on_an_outgoing_connection_is_not_a_port_in_use() -> None:
    text = (
        "requests.exceptions.ConnectionError: [WinError 10013] 以一种访问权限不允许的方式做了一个访问套接字的尝试。\n"
    )
    assert "PORT_IN_USE" not in codes(text)


def test_a_codec_error_with_a_non_ascii_user_folder_in_the_frames_is_the_path() -> None:
    text = ("Traceback (most recent call last):\n"
            '  File "C:\\Users\\Ярослав\\AppData\\Roaming\\Python\\Python310\\site-packages\\tool\\run.py", line 3, in go\n'
            "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xdf in position 40: invalid continuation byte\n")  # fmt: skip
    found = scan(text)
    assert [(f.code, f.confidence) for f in found] == [("NON_ASCII_PATH", "medium")]
    assert "Ярослав" in found[0].values["paths"]


def test_a_utf8_failure_right_after_the_users_folder_is_a_guess_about_the_user_name() -> None:
    at_nine = "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xc1 in position 9: invalid start byte\n"
    assert [(f.code, f.confidence) for f in scan(at_nine)] == [("NON_ASCII_PATH", "low")]
    assert codes(at_nine.replace("position 9", "position 30")) == []


def test_triton_is_harmless_for_xformers_and_a_failure_when_something_imports_it() -> None:
    warning = "A matching Triton is not available, some optimizations will not be enabled.\nError caught was: No module named 'triton'\n"
    assert [(f.code, f.severity) for f in scan(warning)] == [("TRITON_MISSING", "info")]
    failing = (
        warning
        + "Traceback (most recent call last):\n    import triton\nModuleNotFoundError: No module named 'triton'\n"
    )
    assert [(f.code, f.severity) for f in scan(failing)] == [("TRITON_MISSING", "error")]
    inductor = "backend='inductor' raised:\nRuntimeError: Cannot find a working triton installation. Either the package"
    assert [(f.code, f.severity) for f in scan(inductor)] == [("TRITON_MISSING", "error")]


def test_a_missing_pkg_resources_is_setuptools_whatever_imports_it() -> None:
    text = "  File \"/opt/app/installer.py\", line 12, in <module>\n    import pkg_resources\nModuleNotFoundError: No module named 'pkg_resources'\n"
    assert codes(text) == ["PACKAGE_BUILD_FAILED"]
    assert codes("ModuleNotFoundError: No module named 'pkg_resources_extra'\n") == []


def test_a_cpu_torch_is_read_from_the_torch_the_log_runs_not_from_one_it_asks_for() -> None:
    assert codes("Total VRAM 8192 MB\npytorch version: 2.3.1+cpu\nDevice: cpu\n") == ["TORCH_CPU_BUILD"]
    assert "TORCH_CPU_BUILD" not in codes("ERROR: No matching distribution found for torch==2.7.1+cpu\n")


def test_a_safetensors_error_name_alone_is_enough() -> None:
    assert codes(
        "changing setting sd_model_checkpoint to x.safetensors: SafetensorError\nit says HeaderTooLarge\n"
    ) == ["MODEL_FILE_CORRUPT"]


def test_a_connection_failure_inside_huggingface_hub_is_the_hub_whatever_the_http_library() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/env/lib/python3.12/site-packages/huggingface_hub/file_download.py", line 1500, in get_hf_file_metadata\n'
        "httpx.ConnectError: [Errno 101] Network is unreachable\n"
    )
    assert codes(text) == ["HF_UNREACHABLE"]
    elsewhere = text.replace("huggingface_hub/file_download.py", "myapp/fetch.py")
    assert "HF_UNREACHABLE" not in codes(elsewhere)


def test_pip_giving_up_on_an_index_host_is_the_mirror_and_a_hub_host_is_not() -> None:
    line = (
        "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='{host}', port=443): "
        "Max retries exceeded with url: /packages/x.whl\n"
    )
    assert codes(line.format(host="mirrors.example.edu.cn")) == ["MIRROR_UNREACHABLE"]
    assert "MIRROR_UNREACHABLE" not in codes(line.format(host="huggingface.co"))


def test_what_pip_and_uv_say_about_requires_python_is_the_python_version() -> None:
    pip = "ERROR: Package 'foo' requires a different Python: 3.13.1 not in '<3.13,>=3.9'\n"
    uv = "  ╰─▶ Because the current Python version (3.13.1) does not satisfy Python>=3.9,<3.13 and foo depends on it\n"
    assert codes(pip) == ["PYTHON_VERSION_UNSUPPORTED"]
    assert codes("error: resolve\n" + uv) == ["PYTHON_VERSION_UNSUPPORTED"]


def test_pip_retry_warnings_broken_by_an_ssl_error_are_the_ssl_problem() -> None:
    line = (
        "WARNING: Retrying (Retry(total=2, connect=None, read=None, redirect=None, status=None)) after connection "
        "broken by 'SSLError(SSLZeroReturnError(6, 'TLS/SSL connection has been closed (EOF)'))': /simple/numpy/\n"
    )
    assert codes(line * 2)[0] == "SSL_ERROR"


def test_ctypes_says_a_dll_failed_in_its_own_words() -> None:
    text = "Could not find module 'C:\\env\\Lib\\site-packages\\foo\\bar_cuda.dll' (or one of its dependencies). Try\n"
    found = scan(text)
    assert [f.code for f in found] == ["DLL_LOAD_FAILED"] and found[0].values["library"].endswith("bar_cuda.dll")


@pytest.mark.parametrize(("errno", "want"), [(13, ["PORT_IN_USE"]), (99, [])])
def test_a_bind_failure_is_the_port_whatever_errno_but_not_a_missing_address(errno: int, want: list[str]) -> None:
    reason = "permission denied" if errno == 13 else "cannot assign requested address"
    line = f"OSError: [Errno {errno}] error while attempting to bind on address ('::1', 7860, 0, 0): {reason}\n"
    assert codes(line) == want


def test_an_exception_glued_to_a_users_words_in_another_language_is_still_read() -> None:
    view = read("运行时报错ValueError: bad thing happened\n")
    assert [(e.type, e.message) for e in view.events] == [("ValueError", "bad thing happened")]
    assert not read("someValueError: x\n").events  # glued to an ASCII word it is part of that word


def test_a_build_step_relayed_by_comfyui_manager_is_a_build_failure() -> None:
    assert codes("[!]   Building wheel for dlib (pyproject.toml) did not run successfully.\n[!]   exit code: 1\n") == [
        "PACKAGE_BUILD_FAILED"
    ]
    clone = "  git clone --filter=blob:none --quiet https://example.org/x.git did not run successfully.\n"
    assert "PACKAGE_BUILD_FAILED" not in codes(clone)


def test_a_download_cut_off_while_writing_to_the_temporary_folder_is_the_disk_not_the_network() -> None:
    head = (
        "Downloading https://download.example.org/whl/torch-2.0.1-cp310-cp310-win_amd64.whl (2619.1 MB)\n"
        "ERROR: Exception:\nTraceback (most recent call last):\n"
        '  File "C:\\sd\\venv\\lib\\site-packages\\pip\\_vendor\\urllib3\\response.py", line 435, in _error_catcher\n'
        "    yield\n"
        '  File "C:\\sd\\venv\\lib\\site-packages\\pip\\_vendor\\cachecontrol\\filewrapper.py", line 94, in read\n'
        "    self.__buf.write(data)\n"
    )
    written = (
        head + '  File "C:\\Python310\\lib\\tempfile.py", line 483, in func_wrapper\n    return func(*args, **kwargs)\n'
    )
    assert [(f.code, f.confidence) for f in scan(written)] == [("DISK_LOW", "low")]
    assert "DISK_LOW" not in codes(head)  # cut off while reading: the network, as far as the log says


def test_the_loaders_number_and_file_are_enough_without_an_exception_type() -> None:
    line = '12:00:01 ERROR    Could not load torch: [WinError 1114] A DLL initialization routine failed. Error loading "C:\\t\\c10.dll" or one of its dependencies.\n'
    assert codes(line) == ["DLL_LOAD_FAILED"]


def test_a_timeout_in_a_program_that_downloads_from_the_hub_is_a_guess_about_the_hub() -> None:
    text = 'hf_hub_download(repo_id="org/model", filename="config.json")\nTraceback (most recent call last):\nTimeoutError: timed out\n'
    assert [(f.code, f.confidence) for f in scan(text)] == [("HF_UNREACHABLE", "low")]
    assert "HF_UNREACHABLE" not in codes("Traceback (most recent call last):\nTimeoutError: timed out\n")


def test_xformers_second_line_alone_still_says_triton_is_missing_and_harmless() -> None:
    assert [(f.code, f.severity) for f in scan("Error caught was: No module named 'triton'\n")] == [
        ("TRITON_MISSING", "info")
    ]


@pytest.mark.parametrize(
    "line", ["Ultralytics 8.3 Python-3.11.9 torch-2.6.0+cpu", 'System info: "2.0.0+cpu Autocast half"']
)
def test_a_cpu_torch_stated_in_other_words_is_the_cpu_build(line: str) -> None:
    assert codes(line + "\n") == ["TORCH_CPU_BUILD"]


def test_an_exception_after_a_log_level_column_is_read() -> None:
    view = read("2026-05-12 23:37:39,046 INFO OSError: [WinError 127] Не найдена указанная процедура\n")
    assert [(e.type, e.numbers) for e in view.events] == [("OSError", (127,))]
    assert codes(view.raw) == ["DLL_LOAD_FAILED"]


def test_an_installers_stated_python_range_is_held_against_the_python_the_log_shows() -> None:
    text = "Please install Python 3.10.0 or higher (maximum 3.11.100) before running this script.\n\nPython {}\n"
    assert codes(text.format("3.12.7")) == ["PYTHON_VERSION_UNSUPPORTED"]
    assert codes(text.format("3.11.9")) == []


def test_a_pickle_stream_of_garbage_is_a_damaged_file() -> None:
    assert codes("ValueError: BINBYTES exceeds system's maximum size of 9223372036854775807 bytes\n") == [
        "MODEL_FILE_CORRUPT"
    ]
