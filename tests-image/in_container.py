"""Runs inside a test container of the vllm-spark image (fake torch in the base): prints one JSON
object saying what the cuDNN hook did in this process and in children started the ways vLLM and
Ray start them, including a scrubbed environment. Read by crates/cli/tests/it/image_vllm_spark.rs."""

import ast
import os
import subprocess
import sys

# Debian's python3-minimal has no `json`: children print repr(), this process writes JSON itself.
CASE = (
    "import os, sys, torch; h = sys.modules.get('sparkctl_cudnn');"
    "print(repr({'pid': os.getpid(), 'enabled': torch.backends.cudnn.enabled, 'hook': h.state if h else None,"
    " 'pythonpath': os.environ.get('PYTHONPATH'), 'base_sitecustomize_ran': getattr(sys, 'base_sitecustomize_ran', False)}))"
)


def to_json(v):
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else "\\u%04x" % ord(c) for c in v) + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    return "{" + ",".join(to_json(str(k)) + ":" + to_json(x) for k, x in v.items()) + "}"


def child(env, args=()):
    p = subprocess.run([sys.executable, *args, "-c", CASE], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr}
    return ast.literal_eval(p.stdout.strip())


log = os.environ.get("FAKE_TORCH_LOG", "/tmp/fake-torch.log")
recorder = {"FAKE_TORCH_LOG": log}
torch_before = "torch" in sys.modules
import torch  # noqa: E402

out = {
    "torch_imported_at_start": torch_before,
    "main": {
        "pid": os.getpid(),
        "enabled": torch.backends.cudnn.enabled,
        "hook": sys.modules["sparkctl_cudnn"].state if "sparkctl_cudnn" in sys.modules else None,
        "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
        "base_sitecustomize_ran": getattr(sys, "base_sitecustomize_ran", False),
    },
    # The container's environment, as multiprocessing/spawn and Ray's raylet pass it on.
    "inherited": child(dict(os.environ)),
    # Scrubbed: no PYTHONPATH, no SPARK_CUDNN (only the recorder's path): the .pth route.
    "scrubbed": child(dict(recorder)),
    "scrubbed_off": child(dict(recorder, SPARK_CUDNN="off")),
    "scrubbed_gb10": child(dict(recorder, SPARK_CUDNN_GPU_CC="12.1")),
    "isolated_off": child(dict(recorder, SPARK_CUDNN="off"), ("-I",)),
}
with open(log) as f:
    out["log"] = f.read().splitlines()
print(to_json(out))
