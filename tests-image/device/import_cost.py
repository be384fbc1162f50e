"""What the hook adds to `import torch`, on a machine with a GPU: alternating fresh interpreters,
no hook / SPARK_CUDNN=auto / off / on, `python -c "import torch"` wall time, plus the hook's own
time inside the process (`state["apply_ms"]`: the NVML probe for auto, the flag set for off).

Run from the repository root: `python3 tests-image/device/import_cost.py [ROUNDS]`."""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOK = os.path.join(ROOT, "overlays/cudnn-hook/rootfs/usr/local/lib/sparkctl/python")
CODE = "import sys, torch; h = sys.modules.get('sparkctl_cudnn'); print(h.state['apply_ms'] if h else '')"


def env(**extra):
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_CUDNN", "SPARK_CUDNN_GPU_CC")}
    e.update(extra)
    return e


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    variants = [
        ("no hook", env()),
        ("hook auto", env(PYTHONPATH=HOOK, SPARK_CUDNN="auto")),
        ("hook auto, GPU_CC given", env(PYTHONPATH=HOOK, SPARK_CUDNN="auto", SPARK_CUDNN_GPU_CC="9.0")),
        ("hook off", env(PYTHONPATH=HOOK, SPARK_CUDNN="off")),
        ("hook on", env(PYTHONPATH=HOOK, SPARK_CUDNN="on")),
    ]
    wall = {n: [] for n, _ in variants}
    inside = {n: [] for n, _ in variants}
    subprocess.run([sys.executable, "-c", "import torch"], check=True)  # warm the page cache
    for _ in range(rounds):
        for name, e in variants:
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", CODE], env=e, capture_output=True, text=True, check=True)
            wall[name].append((time.perf_counter() - t) * 1000)
            if p.stdout.strip():
                inside[name].append(float(p.stdout.strip()))
    for name, _ in variants:
        w = wall[name]
        line = "%-24s import torch wall ms: median %.0f mean %.0f min %.0f max %.0f (n=%d)" % (name, statistics.median(w), statistics.mean(w), min(w), max(w), len(w))
        if inside[name]:
            line += "; hook in-process ms: median %.2f max %.2f" % (statistics.median(inside[name]), max(inside[name]))
        print(line, flush=True)


if __name__ == "__main__":
    main()
