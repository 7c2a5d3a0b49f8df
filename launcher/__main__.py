"""``python -m launcher`` is ``yijian``."""

import sys

from launcher.cli import main

sys.exit(main())
