"""The launcher's log file, logs/yijian.log: full detail behind every error, with secrets masked.

Every record passes through :mod:`bootstrap.redact`; the secrets of the
launcher's environment (tokens, proxy passwords) are remembered here so
that they are masked even where they have no recognisable shape.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from bootstrap.layout import Bundle
from bootstrap.redact import RedactingFormatter, remember_environ

LOG_NAME = "yijian.log"


def log_path(bundle: Bundle) -> Path:
    return bundle.logs_dir / LOG_NAME


def setup_logging(bundle: Bundle) -> Path | None:
    """Send the ``yijian`` logger to logs/yijian.log; None if it cannot be written."""
    path = log_path(bundle)
    remember_environ(os.environ)
    logger = logging.getLogger("yijian")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8", delay=True
        )
    except OSError:
        return None
    handler.setFormatter(RedactingFormatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return path
