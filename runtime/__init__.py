"""Yijian's generation runtime: runs in the bundle environment as a child process."""

import logging as _logging


class _NoTorchvisionFallbackNotice(_logging.Filter):
    """Drops transformers' "`X` requires torchvision (not installed); falling back to `XPil`" notice.

    Where torchvision is absent (the CPU pack built from a wheel folder holding only torch) transformers 5 binds
    ``CLIPImageProcessor`` and the like to their PIL classes and warns once per name, whenever diffusers merely
    imports them.  The fallback is what the runtime wants (it loads no image processor anyway), so the notice is
    noise in every launch log; nothing else from transformers is filtered.
    """

    def filter(self, record: _logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


_logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionFallbackNotice())
