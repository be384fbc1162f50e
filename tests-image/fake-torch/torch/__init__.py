"""A stand-in for PyTorch in the image tests: the parts the cuDNN hook touches, nothing else.

As in the real package, `torch.backends.cudnn` is a module object whose `enabled` is a property
over a global flag (default True), and `import torch` imports it. Every import of torch and every
set of the flag is appended to `$FAKE_TORCH_LOG` (if set) as one line `<pid> <event>`, so a test
sees what happened in processes it cannot talk to."""

import os as _os

__version__ = "0.0.0+sparkctl.fake"


def _record(event):
    log = _os.environ.get("FAKE_TORCH_LOG")
    if log:
        with open(log, "a") as f:
            f.write("%d %s\n" % (_os.getpid(), event))


_record("import torch")

from . import backends  # noqa: E402,F401
from .backends import cudnn as _cudnn  # noqa: E402,F401
