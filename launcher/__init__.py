"""Yijian's launcher: the core (hardware, packs, mirrors, downloads, doctor)
and two thin faces over it, the CLI (``launcher.cli``) and the TUI
(``launcher.tui``).  Core modules never import a UI library, and nothing here
imports ``runtime``: the runtime runs as a child process in its own
environment."""

from launcher._version import __version__

__all__ = ["__version__"]
