"""Environment packs: the shipped combinations of Python, torch, torchvision and xformers (``catalog``), and the
choice of one for this machine's GPUs and driver (``resolver``)."""

from launcher.packs.catalog import Pack, PackSet, load_packs

__all__ = ["Pack", "PackSet", "load_packs"]
