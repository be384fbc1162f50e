"""Switch cuDNN off in every Python process of the container that imports torch (GB10 / sm_121).

GB10 (DGX Spark, compute capability 12.1) lacked cuDNN Conv3d kernels: vision encoders that run a
Conv3d patch embedding fail there unless cuDNN is off. The field fix was a `sitecustomize.py`
that imports torch and sets `torch.backends.cudnn.enabled = False`; that makes every Python
process of the container (pip, Ray's dashboard agents, shell helpers) pay for a torch import.

This module does it lazily instead: `install()` puts a finder at the front of `sys.meta_path`
that does nothing until something imports `torch`; then, right after torch's own `__init__` ran,
it applies the switch. Interpreter start costs one small module and no torch import.

The switch is `SPARK_CUDNN`, read when torch is imported:
  off   cuDNN disabled
  on    cuDNN left as torch has it (the hook does nothing)
  auto  (default) disabled only when a GPU of the machine is one whose cuDNN needs it (sm_121)
        and the stack still sends the Qwen-VL patch-embed Conv3d to cuDNN. vLLM's Conv3dLayer
        (vllm/model_executor/layers/conv.py) routes it to F.linear on torch >= 2.9.0 from vLLM
        0.19 on, and on torch == 2.9.0 exactly from 0.13 to 0.18 (the same version test as
        vLLM's: a pre-release such as NGC's `2.9.0a0` is older than 2.9.0). There cuDNN stays on
        (Conv2d keeps its cuDNN kernels). `--model-impl transformers` can still reach the Conv3d:
        set SPARK_CUDNN=off for it. docs/image.md records the decision per base.

`auto` asks NVML (libnvidia-ml, the driver's management library) for the compute capabilities,
as vLLM's own NVML platform does, because NVML does not create a CUDA context: asking torch
(`torch.cuda.get_device_capability`) would initialise CUDA in the API server and break the
fork-based workers that vLLM starts later. The answer is stored in `SPARK_CUDNN_GPU_CC`
(e.g. `12.1`, or `none`) so child processes that inherit the environment skip the probe; a
launcher that knows the answer may set it up front.

Loaded two ways, both idempotent: `sitecustomize.py` beside this file (found through
`PYTHONPATH`, any Python version) and a `.pth` file in Debian/Ubuntu's version-independent
`/usr/lib/python3/dist-packages` (processes started with a scrubbed environment, `python -E/-I`).

Uses only `sys` and `os` at start (both already imported by `site`); nothing here may raise into
the interpreter start or into `import torch`.
"""

import os
import sys

ENV = "SPARK_CUDNN"
CACHE_ENV = "SPARK_CUDNN_GPU_CC"
MODES = ("off", "on", "auto")
DEFAULT_MODE = "auto"
# Compute capabilities whose cuDNN lacks kernels that vLLM's models need: GB10 (DGX Spark).
NEEDS_OFF = frozenset([(12, 1)])
# vLLM's Conv3dLayer computes the degenerate patch-embed Conv3d (kernel == stride) as F.linear,
# so it never reaches cuDNN: from FIXED_VLLM on only when torch is exactly FIXED_TORCH
# (`is_torch_equal("2.9.0")`), from ANY_TORCH_VLLM on when torch is FIXED_TORCH or newer
# (`is_torch_equal_or_newer("2.9.0")`, vLLM pull request 38487, first released in 0.19.0).
FIXED_TORCH = (2, 9, 0)
FIXED_VLLM = (0, 13)
ANY_TORCH_VLLM = (0, 19)

# What the hook decided in this process, for `python -m sparkctl_cudnn` and for tests.
state = {"installed": False, "torch_seen": False, "mode": None, "gpus": None, "versions": None, "disabled": None, "error": None, "apply_ms": None}


def _warn(message):
    try:
        sys.stderr.write("sparkctl cudnn hook: %s\n" % message)
    except Exception:
        pass


def read_mode(environ=None):
    """Returns (mode, warning): the mode from `SPARK_CUDNN`, `auto` when unset or invalid."""
    environ = os.environ if environ is None else environ
    raw = environ.get(ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MODE, None
    value = raw.strip().lower()
    if value in MODES:
        return value, None
    return DEFAULT_MODE, "%s=`%s` is not one of off|on|auto; using auto" % (ENV, raw)


def parse_capabilities(text):
    """`12.1,9.0` → [(12, 1), (9, 0)]; `none` → []; anything else → None (probe again)."""
    text = text.strip()
    if text == "none":
        return []
    caps = []
    for part in text.split(","):
        major, dot, minor = part.strip().partition(".")
        if not dot or not major.isdigit() or not minor.isdigit():
            return None
        caps.append((int(major), int(minor)))
    return caps or None


def format_capabilities(caps):
    return ",".join("%d.%d" % c for c in caps) if caps else "none"


def nvml_capabilities():
    """Compute capabilities of the GPUs NVML sees, without creating a CUDA context.

    Returns [] when there is no driver or no GPU (then cuDNN is irrelevant)."""
    try:
        import ctypes  # not in every Python (Debian's python3-minimal lacks it)

        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except (ImportError, OSError):
        return []
    if nvml.nvmlInit_v2() != 0:
        return []
    try:
        count = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return []
        caps = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
                continue
            major, minor = ctypes.c_int(0), ctypes.c_int(0)
            if nvml.nvmlDeviceGetCudaComputeCapability(handle, ctypes.byref(major), ctypes.byref(minor)) == 0:
                caps.append((major.value, minor.value))
        return caps
    finally:
        nvml.nvmlShutdown()


def gpu_capabilities(environ=None, probe=None):
    """The machine's compute capabilities: from `SPARK_CUDNN_GPU_CC` if set, else probed (and stored)."""
    environ = os.environ if environ is None else environ
    cached = environ.get(CACHE_ENV)
    if cached is not None:
        caps = parse_capabilities(cached)
        if caps is not None:
            return caps
        _warn("%s=`%s` is not like `12.1` or `none`; probing NVML" % (CACHE_ENV, cached))
    caps = (probe or nvml_capabilities)()
    environ[CACHE_ENV] = format_capabilities(caps)
    return caps


def parse_version(text):
    """`2.9.0a0+git` → (2, 9); anything unreadable → None."""
    try:
        parts = str(text).split("+")[0].split(".")
        minor = parts[1]
        digits = minor[: len(minor) - len(minor.lstrip("0123456789"))]
        return int(parts[0]), int(digits)
    except (ValueError, IndexError):
        return None


def parse_release(text):
    """PEP 440 enough for torch's versions: `2.9.0a0+git` → ((2, 9, 0), True), `2.9.0+cu130` →
    ((2, 9, 0), False), `2.10` → ((2, 10, 0), False); the flag says pre-release (a, b, rc, dev),
    which sorts before the release itself. Anything unreadable → None."""
    try:
        public = str(text).split("+")[0].strip().lower()
        release, i = [], 0
        while True:
            j = i
            while j < len(public) and public[j].isdigit():
                j += 1
            if j == i:
                break
            release.append(int(public[i:j]))
            i = j
            if i + 1 < len(public) and public[i] == "." and public[i + 1].isdigit():
                i += 1
            else:
                break
        if not release:
            return None
        rest = public[i:].lstrip(".-_")
        pre = rest.startswith(("a", "b", "c", "rc", "pre", "dev"))
        return tuple((release + [0, 0, 0])[: max(3, len(release))]), pre
    except Exception:
        return None


def torch_at_least(torch_version, target):
    """`version.parse(torch) >= version.parse(target)` as vLLM checks it, target a release."""
    t = parse_release(torch_version)
    if t is None:
        return None
    (release, pre), want = t, tuple(target) + (0,) * (len(t[0]) - len(target))
    return release > want or (release == want and not pre)


def torch_exactly(torch_version, target):
    """vLLM's `is_torch_equal(target)`: target <= torch < target + ".1" (local labels ignored)."""
    t = parse_release(torch_version)
    if t is None:
        return None
    (release, pre) = t
    return not pre and release[: len(target)] == tuple(target) and not any(release[len(target) :])


def stack_fixed(torch_version, vllm_version):
    """True when this torch + vLLM never send the patch-embed Conv3d to cuDNN."""
    v = parse_version(vllm_version)
    if v is None or v < FIXED_VLLM:
        return False
    fixed = torch_at_least(torch_version, FIXED_TORCH) if v >= ANY_TORCH_VLLM else torch_exactly(torch_version, FIXED_TORCH)
    return bool(fixed)


def should_disable(mode, capabilities, versions=None):
    """The decision, pure: `capabilities` (and `versions`, giving (torch, vllm) version strings)
    are callables so `off`/`on` never probe; without `versions` the stack counts as unfixed."""
    if mode == "off":
        return True
    if mode == "on":
        return False
    if not any(c in NEEDS_OFF for c in capabilities()):
        return False
    return not (versions is not None and stack_fixed(*versions()))


def dist_version(name):
    """An installed distribution's version from its metadata (the package is not imported)."""
    try:
        from importlib import metadata

        return metadata.version(name)
    except Exception:
        return None


def vllm_version():
    return dist_version("vllm")


def apply(torch_module, environ=None, probe=None):
    """Runs right after `import torch` finished: disables cuDNN when the mode says so."""
    import time  # built in: costs nothing, and only once torch is imported

    started = time.perf_counter()
    environ = os.environ if environ is None else environ
    state["torch_seen"] = True
    mode, warning = read_mode(environ)
    state["mode"] = mode
    if warning:
        _warn(warning)

    def capabilities():
        state["gpus"] = gpu_capabilities(environ, probe)
        return state["gpus"]

    def versions():
        state["versions"] = (getattr(torch_module, "__version__", None), vllm_version())
        return state["versions"]

    try:
        disable = should_disable(mode, capabilities, versions)
        state["disabled"] = disable
        if disable:
            import importlib

            # torch replaces this module by an object whose `enabled` is a property over the
            # global flag (torch._C._set_cudnn_enabled): setting it needs no CUDA.
            cudnn = importlib.import_module(torch_module.__name__ + ".backends.cudnn")
            cudnn.enabled = False
    except Exception as e:  # never break `import torch`
        state["error"] = repr(e)
        _warn("could not apply %s=%s: %r" % (ENV, mode, e))
    state["apply_ms"] = round((time.perf_counter() - started) * 1000, 3)


class TorchImportHook(object):
    """A meta-path finder that finds nothing itself: it lets the other finders locate `torch` and
    wraps that loader's `exec_module`, so `apply` runs once torch's `__init__` is done."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch":
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module
        hook = self

        def exec_module(module):
            original(module)
            if hook in sys.meta_path:
                sys.meta_path.remove(hook)
            apply(module)

        try:
            # On this loader instance only (torch's own): the module keeps its real loader type.
            spec.loader.exec_module = exec_module
        except (AttributeError, TypeError):
            # A loader that refuses attributes (__slots__): put a delegating one in its place.
            spec.loader = _DelegatingLoader(spec.loader, exec_module)
        return spec

    # Python < 3.4 finders; harmless elsewhere.
    def find_module(self, fullname, path=None):
        return None


class _DelegatingLoader(object):
    """Forwards everything to the real loader except `exec_module`."""

    def __init__(self, loader, exec_module):
        self._loader = loader
        self.exec_module = exec_module

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create else None

    def __getattr__(self, name):
        return getattr(self._loader, name)


def install():
    """Idempotent: the sitecustomize and the .pth routes may both run in one process."""
    if state["installed"]:
        return
    state["installed"] = True
    if "torch" in sys.modules:  # imported before us (another .pth): apply now
        apply(sys.modules["torch"])
        return
    sys.meta_path.insert(0, TorchImportHook())


def chain_sitecustomize(own_file):
    """Runs the `sitecustomize` that ours shadows: the next one on `sys.path` after our folder
    (e.g. Debian's `/usr/lib/python3.X/sitecustomize.py`), so the base image's keeps working."""
    own_dir = os.path.realpath(os.path.dirname(own_file))
    rest, seen = [], False
    for entry in sys.path:
        real = os.path.realpath(entry or os.getcwd())
        if real == own_dir:
            seen = True
        elif seen:
            rest.append(entry)
    if not seen:
        return None
    # importlib.machinery.PathFinder is on sys.meta_path already; importing importlib.util for
    # module_from_spec would cost ~3 ms per interpreter start (contextlib, functools, ...).
    finder = next((f for f in sys.meta_path if getattr(f, "__name__", None) == "PathFinder"), None)
    if finder is None:
        from importlib.machinery import PathFinder as finder
    spec = finder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return None
    module = spec.loader.create_module(spec) if hasattr(spec.loader, "create_module") else None
    if module is None:
        module = type(sys)(spec.name)
    module.__spec__, module.__loader__ = spec, spec.loader
    if spec.has_location:
        module.__file__, module.__cached__ = spec.origin, spec.cached
    spec.loader.exec_module(module)
    return module


def report():
    """One line per fact, for `python -m sparkctl_cudnn` (the entrypoint and doctor may call it)."""
    hooked = sys.modules.get("sparkctl_cudnn")  # the copy sitecustomize or the .pth loaded
    live = hooked.state if hooked is not None else state
    mode, warning = read_mode()
    lines = ["installed: %s" % ("yes" if live["installed"] else "no"), "mode: %s" % mode]
    if warning:
        lines.append("warning: %s" % warning)
    if mode == "auto":
        caps = gpu_capabilities(dict(os.environ))
        lines.append("gpus: %s" % format_capabilities(caps))
        versions = (dist_version("torch"), vllm_version())
        lines.append("versions: torch %s, vllm %s" % versions)
        lines.append("cudnn: %s" % ("off" if should_disable(mode, lambda: caps, lambda: versions) else "on"))
    else:
        lines.append("cudnn: %s" % ("off" if mode == "off" else "on"))
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
