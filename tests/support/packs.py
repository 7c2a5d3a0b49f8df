"""A small CPU environment pack for builder tests (``{py}``: the Python to use), shared by the setup,
doctor --fix and portable tests."""

TEST_PACK = """
id = "test-cpu"
title_zh = "测试用 CPU 环境包"
title_en = "CPU pack for tests"
python = "{py}"
torch = "2.7.1+cpu"
torchvision = ""
xformers = ""
cuda = "cpu"
torch_arch = []
torch_ptx = []
xformers_arch = []
xformers_ptx = []
min_driver_linux = ""
min_driver_windows = ""
os = ["linux", "windows"]
priority = 0
runtime = "test-runtime.txt"
notes_zh = "测试"
notes_en = "tests"
"""
