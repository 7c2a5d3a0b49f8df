"""What the machine has: the OS, the NVIDIA driver and GPUs (``nvidia``), as source-neutral records."""

from launcher.hardware.nvidia import Gpu, Hardware, given_gpu, given_hardware, host_os, probe

__all__ = ["Gpu", "Hardware", "given_gpu", "given_hardware", "host_os", "probe"]
