"""A small CPU environment pack for builder tests (``{py}``: the Python to use), shared by the setup,
doctor --fix and portable tests; and the pack each recorded machine gets (the resolver's and ``packs explain``'s
tests)."""

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

# Every recorded machine (tests/support/data/gpus) and the pack it gets; a new recording needs its line here.
EXPECTED = {
    "gtx1060-472": "cu118", "titanxp-450": "cpu", "t4-460": "cu118",  # drivers too old for CUDA 12 (or for any)
    "teslap4-550": "cu126", "dual-3090-1080ti-560": "cu126",  # Pascal on CUDA 12 drivers: torch 2.14's cu126
    "rtx2080ti-535": "cu128", "rtx3060-537": "cu128", "rtx4090-552": "cu128", "a100-550": "cu128",
    "rtx4060laptop-566": "cu128", "gtx1660-550-nocuda": "cu128", "rtx5090-572": "cu128", "rtx5090-wsl-572": "cu128",
    "rtx2080super-591": "cu130", "rtx2080super-610": "cu130", "rtx5090-4090-580": "cu130",  # drivers >= 580
    "absent": "cpu", "driver-not-loaded": "cpu", "driver-mismatch": "cpu", "hang": "cpu",
}  # fmt: skip
