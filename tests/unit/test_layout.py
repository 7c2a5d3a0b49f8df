"""The bundle root: where things go, and which roots are refused and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.errors import BundlePathError
from bootstrap.layout import CODE_ROOT, Bundle, bundle_environ, check_root_path


def test_root_defaults_to_the_code_folder() -> None:
    assert Bundle.locate({}).root == CODE_ROOT


def test_yijian_home_moves_everything_written(tmp_path: Path) -> None:
    b = Bundle.locate({"YIJIAN_HOME": str(tmp_path / "data")})
    for p in (b.python_dir, b.env_dir, b.cache_dir, b.logs_dir, b.outputs_dir, b.config_file, b.models_dir):
        assert p.is_relative_to(tmp_path / "data")
    assert b.mirrors_file == CODE_ROOT / "mirrors.toml"  # shipped data stays with the code


def test_ensure_dirs_makes_the_a1111_model_folders(tmp_path: Path) -> None:
    b = Bundle(root=tmp_path)
    b.ensure_dirs()
    for name in ("Stable-diffusion", "Lora", "VAE", "embeddings", "ESRGAN"):
        assert (tmp_path / "models" / name).is_dir()
    for name in ("env", "cache", "logs", "outputs"):
        assert (tmp_path / name).is_dir()


def test_every_cache_points_inside_the_bundle(tmp_path: Path) -> None:
    b = Bundle(root=tmp_path)
    env = bundle_environ(b, {"HOME": "/home/u", "PYTHONHOME": "/x", "PYTHONSTARTUP": "/y"})
    for key in ("PIP_CACHE_DIR", "UV_CACHE_DIR", "HF_HOME", "TORCH_HOME", "TRITON_CACHE_DIR", "XDG_CACHE_HOME",
                "MPLCONFIGDIR", "GRADIO_TEMP_DIR", "UV_PYTHON_INSTALL_DIR", "RUSTUP_HOME", "CARGO_HOME"):  # fmt: skip
        assert Path(env[key]).is_relative_to(tmp_path), key
    assert "PYTHONHOME" not in env and "PYTHONSTARTUP" not in env
    assert env["PYTHONPATH"] == str(CODE_ROOT)
    assert env["YIJIAN_HOME"] == str(tmp_path)


@pytest.mark.parametrize(
    "path",
    ["/home/u/my bundle", "/data/yijian-1.0_x", "/home/u/整合包"],
)
def test_posix_roots_that_work(path: str) -> None:
    check_root_path(Path(path), os_name="posix")


@pytest.mark.parametrize(
    ("path", "os_name", "why"),
    [
        ("/home/u/a:b", "posix", "':'"),
        ("/home/u/a\nb", "posix", "control characters"),
        ("D:\\AI\\整合包", "nt", "non-ASCII"),
        ("D:\\a;b", "nt", "';'"),
    ],
)
def test_roots_refused_with_reason_and_fix(path: str, os_name: str, why: str) -> None:
    with pytest.raises(BundlePathError) as info:
        check_root_path(Path(path), os_name=os_name)
    assert why in info.value.message("en")
    assert "Move the bundle" in info.value.hint("en")
    assert "请把整合包移动到" in info.value.hint("zh")


def test_windows_drive_colon_is_fine() -> None:
    check_root_path(Path("D:\\AI\\yijian portable"), os_name="nt")
