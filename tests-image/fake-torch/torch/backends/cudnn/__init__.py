"""`torch.backends.cudnn` stand-in: `enabled` is a property, as in torch (a PropModule)."""

import sys
import types

import torch

_flag = {"enabled": True}


class _CudnnModule(types.ModuleType):
    @property
    def enabled(self):
        return _flag["enabled"]

    @enabled.setter
    def enabled(self, value):
        _flag["enabled"] = bool(value)
        torch._record("set cudnn.enabled=%s" % bool(value))

    def is_available(self):
        return True


_module = _CudnnModule(__name__, __doc__)
_module.__dict__.update({k: v for k, v in globals().items() if k.startswith("__") and k not in ("__class__", "__dict__")})
sys.modules[__name__] = _module
