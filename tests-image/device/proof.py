"""Real-torch proof of the cuDNN hook and of the baked env, on a machine with a GPU and PyTorch.

Run from the repository root: `python3 tests-image/device/proof.py OUTDIR`. Every case runs in a
fresh interpreter (a subprocess), as vLLM's API server, engine core and Ray workers are. Prints
one line per fact; writes the NCCL logs and the import-time listing to OUTDIR. docs/image.md
records a run of it.
"""

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOOK = os.path.join(ROOT, "overlays/cudnn-hook/rootfs/usr/local/lib/sparkctl/python")
PY = sys.executable
OUT = sys.argv[1] if len(sys.argv) > 1 else "."

CASE = r"""
import json, os, sys, time
t0 = time.perf_counter()
import torch
t_import = time.perf_counter() - t0
after_import = torch.backends.cudnn.enabled
cuda_initialised_by_import = torch.cuda.is_initialized()
hook = sys.modules.get("sparkctl_cudnn")
conv = torch.nn.Conv3d(3, 16, kernel_size=(2, 14, 14), stride=(2, 14, 14)).cuda().half()
x = torch.randn(8, 3, 2, 224, 224, device="cuda", dtype=torch.half)
kernels = []
try:
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        y = conv(x); torch.cuda.synchronize()
    kernels = sorted({e.key for e in prof.key_averages() if e.device_type.name == "CUDA"})
except Exception as e:
    y = conv(x); torch.cuda.synchronize(); kernels = ["profiler failed: %r" % e]
print(json.dumps({
    "SPARK_CUDNN": os.environ.get("SPARK_CUDNN"),
    "hook_loaded": hook is not None,
    "hook_state": hook.state if hook else None,
    "cudnn_enabled_after_import": after_import,
    "cuda_initialised_by_import": cuda_initialised_by_import,
    "import_torch_s": round(t_import, 3),
    "conv3d_out": list(y.shape), "conv3d_device": str(y.device), "conv3d_finite": bool(torch.isfinite(y).all()),
    "cudnn_kernels": [k for k in kernels if "cudnn" in k.lower() or "xmma" in k.lower() or "implicit" in k.lower()],
    "kernels": kernels[:12],
}))
"""


def run(args, env, **kw):
    return subprocess.run(args, env=env, capture_output=True, text=True, **kw)


def env_with(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_CUDNN", "SPARK_CUDNN_GPU_CC")}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def say(title, value):
    print("%s: %s" % (title, value if isinstance(value, str) else json.dumps(value)), flush=True)


def torch_cases():
    for name, env in [
        ("no hook", env_with()),
        ("hook SPARK_CUDNN=off", env_with(PYTHONPATH=HOOK, SPARK_CUDNN="off")),
        ("hook SPARK_CUDNN=on", env_with(PYTHONPATH=HOOK, SPARK_CUDNN="on")),
        ("hook SPARK_CUDNN=auto", env_with(PYTHONPATH=HOOK, SPARK_CUDNN="auto")),
        ("hook SPARK_CUDNN unset (auto)", env_with(PYTHONPATH=HOOK)),
        ("hook auto, SPARK_CUDNN_GPU_CC=12.1 (as a GB10 would report)", env_with(PYTHONPATH=HOOK, SPARK_CUDNN="auto", SPARK_CUDNN_GPU_CC="12.1")),
    ]:
        p = run([PY, "-c", CASE], env)
        say("case " + name, p.stdout.strip() or ("FAILED rc=%d %s" % (p.returncode, p.stderr[-2000:])))
        if p.stderr.strip():
            say("  stderr", p.stderr.strip()[-600:])


def nvml_probe():
    code = "import time,sparkctl_cudnn as h; t=time.perf_counter(); c=h.nvml_capabilities(); print(c, round((time.perf_counter()-t)*1000,2), 'ms')"
    for _ in range(3):
        p = run([PY, "-c", code], env_with(PYTHONPATH=HOOK))
        say("nvml probe (capabilities, time)", (p.stdout + p.stderr).strip())
    p = run(["nvidia-smi", "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"], os.environ.copy())
    say("nvidia-smi name,compute_cap,driver", p.stdout.strip() or p.stderr.strip())


def pth_route():
    """A process with a scrubbed environment (no PYTHONPATH) still gets the hook through the .pth,
    as in the image; here the .pth goes into this Python's own site-packages."""
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    dest = "/usr/local/lib/sparkctl/python"
    os.makedirs(dest, exist_ok=True)
    for f in ("sparkctl_cudnn.py", "sitecustomize.py"):
        with open(os.path.join(HOOK, f)) as src, open(os.path.join(dest, f), "w") as dst:
            dst.write(src.read())
    pth = os.path.join(site, "sparkctl-cudnn.pth")
    with open(os.path.join(ROOT, "overlays/cudnn-hook/rootfs/usr/lib/python3/dist-packages/sparkctl-cudnn.pth")) as src, open(pth, "w") as dst:
        dst.write(src.read())
    try:
        for mode in ("off", None):
            env = {"PATH": "/usr/bin:/bin"}
            if mode:
                env["SPARK_CUDNN"] = mode
            p = run([PY, "-c", "import os,sys,torch; print(os.environ.get('PYTHONPATH'), torch.backends.cudnn.enabled, sys.modules['sparkctl_cudnn'].state)"], env)
            say("scrubbed env (env -i) .pth route, SPARK_CUDNN=%s" % mode, (p.stdout + p.stderr).strip()[-800:])
    finally:
        os.remove(pth)


def startup(n=30):
    """Interpreter start, `python -c pass`, with and without the hook, alternating runs."""
    times = {"no hook": [], "hook, source compiled each run": [], "hook, bytecode cached": []}
    cached = env_with(PYTHONPATH=HOOK, SPARK_CUDNN="auto", PYTHONPYCACHEPREFIX="/tmp/sparkctl-pyc")
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([PY, "-c", "pass"], env=cached, check=True)
    variants = (("no hook", env_with()), ("hook, source compiled each run", env_with(PYTHONPATH=HOOK, SPARK_CUDNN="auto")), ("hook, bytecode cached", cached))
    for _ in range(n):
        for name, env in variants:
            t = time.perf_counter()
            subprocess.run([PY, "-c", "pass"], env=env, check=True)
            times[name].append((time.perf_counter() - t) * 1000)
    for name, ts in times.items():
        say("python -c pass, %s, %d runs (ms)" % (name, n), {"median": round(statistics.median(ts), 2), "mean": round(statistics.mean(ts), 2), "min": round(min(ts), 2), "max": round(max(ts), 2)})
    p = run([PY, "-X", "importtime", "-c", "pass"], env_with(PYTHONPATH=HOOK))
    with open(os.path.join(OUT, "importtime-python-c-pass-with-hook.txt"), "w") as f:
        f.write(p.stderr)
    say("torch imported at start with hook", "torch" in p.stderr.split())
    tt = {"no hook": [], "hook auto": [], "hook off": []}
    for _ in range(5):
        for name, env in (("no hook", env_with()), ("hook auto", env_with(PYTHONPATH=HOOK, SPARK_CUDNN="auto")), ("hook off", env_with(PYTHONPATH=HOOK, SPARK_CUDNN="off"))):
            t = time.perf_counter()
            subprocess.run([PY, "-c", "import torch"], env=env, check=True)
            tt[name].append((time.perf_counter() - t) * 1000)
    for name, ts in tt.items():
        say("python -c 'import torch', %s, 5 runs (ms)" % name, {"median": round(statistics.median(ts), 1), "min": round(min(ts), 1)})


def nccl_one_rank():
    """The single-GPU part: one NCCL rank in one process with the env the image bakes."""
    import tomllib

    with open(os.path.join(ROOT, "overlays/spark-env/overlay.toml"), "rb") as f:
        baked = tomllib.load(f)["env"]
    ifname = next((n for n in sorted(os.listdir("/sys/class/net")) if n != "lo"), "lo")
    code = (
        "import os, torch, torch.distributed as dist\n"
        "dist.init_process_group('nccl', init_method='tcp://127.0.0.1:29533', rank=0, world_size=1)\n"
        "t = torch.ones(1 << 20, device='cuda'); dist.all_reduce(t); torch.cuda.synchronize()\n"
        "print('all_reduce ok', float(t[0]), 'env', {k: os.environ[k] for k in sorted(os.environ) if k.startswith(('NCCL_', 'RAY_', 'VLLM_', 'SPARK_'))})\n"
        "dist.destroy_process_group()\n"
    )
    common = dict(NCCL_DEBUG="INFO", NCCL_DEBUG_SUBSYS="INIT,ENV,NET", NCCL_NVLS_ENABLE="0")
    for name, extra in (
        ("default", {}),
        ("socket", dict(NCCL_P2P_DISABLE="1", NCCL_SHM_DISABLE="1", NCCL_IB_DISABLE="1")),
        ("spark-env", dict(baked, NCCL_SOCKET_IFNAME=ifname, PYTHONPATH=HOOK, SPARK_CUDNN="auto")),
    ):
        env = env_with(**common, **extra)
        p = run([PY, "-c", code], env, timeout=180)
        log = os.path.join(OUT, "nccl-1rank-%s.log" % name)
        with open(log, "w") as f:
            f.write(p.stdout + p.stderr)  # as it came: a fixture for the NCCL log analyser
        say("nccl one rank %s env" % name, " ".join("%s=%s" % kv for kv in sorted({**common, **extra}.items()) if kv[0] != "PYTHONPATH"))
        lines = (p.stdout + p.stderr).splitlines()
        keep = [l for l in lines if "NET/" in l or "set by environment" in l or "NCCL version" in l or "all_reduce ok" in l or "Error" in l or "WARN" in l]
        say("nccl one rank %s rc=%d" % (name, p.returncode), "\n  " + "\n  ".join(keep[:25]))


def main():
    os.makedirs(OUT, exist_ok=True)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    p = run([PY, "-c", "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))"], env_with())
    say("python torch cuda cudnn device cc", (p.stdout + p.stderr).strip())
    for step in (nvml_probe, torch_cases, pth_route, startup, nccl_one_rank):
        try:
            step()
        except Exception as e:
            say("STEP FAILED " + step.__name__, repr(e))


if __name__ == "__main__":
    main()
