"""``python -m bootstrap [ARGS]``: stage 0, then ``yijian ARGS``."""

from __future__ import annotations

import sys

from bootstrap.stage0 import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
