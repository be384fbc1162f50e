#!/usr/bin/env python3
"""Stand-in for `vllm serve` in the entrypoint's tests (vLLM needs a GPU; this does not).

It behaves like vLLM in what the tests check:
- `serve MODEL [--host H] [--port P] [--tensor-parallel-size N] [--gpu-memory-utilization F]
  [--max-model-len N]
  [--distributed-executor-backend ray] [--nnodes N --node-rank R --master-addr A --master-port P
  [--headless]]`; bad or inconsistent arguments exit 2 with vLLM-like messages.
- with the Ray executor it asks Ray (`ray status --address $RAY_ADDRESS`) how many nodes there are
  and fails like vLLM ("Tensor parallel size (2) exceeds available GPUs (1)") when fewer than the
  tensor-parallel size joined (one GPU per node on a Spark; CPU nodes here);
- rank 0 / Ray serves an OpenAI-compatible API: `/health` (503 while "loading"), `/v1/models`,
  `/v1/completions`; headless ranks serve nothing and wait;
- `STANDIN_RECORD=FILE`: writes its argv and the node-specific environment as JSON;
- `STANDIN_NCCL_LOG=FILE`: prints that file (real NCCL_DEBUG=INFO output) as vLLM workers do;
- `STANDIN_ORPHANS=N` and `STANDIN_ORPHAN_PIDS=FILE`: leaves N orphaned grandchildren that exit
  after a second (zombies for PID 1 to reap), their pids written to FILE;
- `STANDIN_LOAD_SECONDS` (default 1): how long `/health` says 503;
- `STANDIN_WEDGE_FILE=FILE`: while FILE exists, completions hang and `/health` still answers
  200 (real vLLM does this when a worker is stopped; here it is switched on at an exact moment).
"""
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def fail(msg, code=2):
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def parse(argv):
    if len(argv) < 2 or argv[0] != "serve":
        fail("usage: vllm serve MODEL [options]")
    opts = {"model": argv[1], "host": "0.0.0.0", "port": 8000, "tp": 1, "backend": None,
            "nnodes": 1, "rank": 0, "master": None, "master_port": None, "headless": False}
    names = {"--host": ("host", str), "--port": ("port", int), "--tensor-parallel-size": ("tp", int),
             "--distributed-executor-backend": ("backend", str), "--nnodes": ("nnodes", int),
             "--node-rank": ("rank", int), "--master-addr": ("master", str), "--master-port": ("master_port", int),
             "--gpu-memory-utilization": ("gpu_memory_utilization", float), "--max-model-len": ("max_model_len", str)}
    rest = argv[2:]
    i = 0
    seen = set()
    while i < len(rest):
        a = rest[i]
        if a == "--headless":
            opts["headless"] = True
            i += 1
            continue
        key, _, inline = a.partition("=")
        if key not in names:
            fail(f"unrecognized arguments: {a}")
        if inline == "" and "=" not in a:
            if i + 1 >= len(rest):
                fail(f"argument {key}: expected one argument")
            val = rest[i + 1]
            i += 2
        else:
            val = inline
            i += 1
        field, conv = names[key]
        try:
            opts[field] = conv(val)
        except ValueError:
            fail(f"argument {key}: invalid {conv.__name__} value: '{val}'")
        seen.add(key)
    if opts["nnodes"] > 1:
        if "--node-rank" not in seen or opts["master"] is None:
            fail("--nnodes > 1 needs --node-rank and --master-addr")
        if not 0 <= opts["rank"] < opts["nnodes"]:
            fail(f"--node-rank {opts['rank']} is out of range for --nnodes {opts['nnodes']}")
        if opts["rank"] > 0 and not opts["headless"]:
            fail("a node with --node-rank > 0 must run --headless")
        if opts["rank"] == 0 and opts["headless"]:
            fail("node rank 0 serves the API and cannot be --headless")
        if opts["backend"] == "ray":
            fail("--nnodes is the native multi-node mode; do not combine it with the ray executor")
    return opts


def ray_nodes():
    addr = os.environ.get("RAY_ADDRESS")
    if not addr:
        fail("RAY_ADDRESS is not set: vLLM would start a local Ray instead of joining the cluster", 1)
    out = subprocess.run(["ray", "status", "--address", addr], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        fail(f"cannot reach Ray at {addr}: {out.stderr.strip()[-300:]}", 1)
    toks = out.stdout.split()
    end = toks.index("Resources") if "Resources" in toks else len(toks)
    return sum(int(toks[i - 1]) for i in range(1, end) if toks[i].startswith("node_") and toks[i - 1].isdigit())


def leave_orphans(n, pid_file):
    pids = []
    for _ in range(n):
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(r)
            grandchild = os.fork()
            if grandchild == 0:
                os.close(w)
                time.sleep(1.0)
                os._exit(0)
            os.write(w, str(grandchild).encode())
            os._exit(0)
        os.close(w)
        pids.append(int(os.read(r, 32).decode()))
        os.close(r)
        os.waitpid(child, 0)
    with open(pid_file + ".tmp", "w") as f:
        json.dump(pids, f)
    os.rename(pid_file + ".tmp", pid_file)


def main():
    opts = parse(sys.argv[1:])
    record = os.environ.get("STANDIN_RECORD")
    if record:
        keep = ["NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "VLLM_HOST_IP", "NCCL_IB_HCA", "NCCL_IB_DISABLE",
                "UCX_NET_DEVICES", "RAY_ADDRESS", "RAY_memory_monitor_refresh_ms", "SPARK_TOKEN", "RAY_AUTH_MODE"]
        data = {"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in keep}}
        if os.path.exists(record) and not os.path.isfile(record):
            # A device or FIFO (`/dev/null`): written to, never renamed over.
            with open(record, "w") as f:
                json.dump(data, f)
        else:
            with open(record + ".tmp", "w") as f:
                json.dump(data, f)
            os.rename(record + ".tmp", record)
    if opts["backend"] == "ray":
        have = ray_nodes()
        if have < opts["tp"]:
            fail(f"ValueError: Tensor parallel size ({opts['tp']}) exceeds available GPUs ({have})", 1)
        print(f"INFO ray cluster has {have} nodes; placement group of {opts['tp']} bundles created", flush=True)
    nccl = os.environ.get("STANDIN_NCCL_LOG")
    if nccl:
        with open(nccl) as f:
            for line in f:
                if not line.startswith("#"):
                    print(line.rstrip("\n"), flush=True)
    orphans = int(os.environ.get("STANDIN_ORPHANS", "0"))
    if orphans:
        leave_orphans(orphans, os.environ["STANDIN_ORPHAN_PIDS"])
    if opts["headless"]:
        print(f"INFO headless rank {opts['rank']} of {opts['nnodes']} connected to {opts['master']}:{opts['master_port']}", flush=True)
        while True:
            signal.pause()
    loaded_at = time.time() + float(os.environ.get("STANDIN_LOAD_SECONDS", "1"))
    model = opts["model"]

    class H(BaseHTTPRequestHandler):
        def reply(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/health":
                self.reply(200 if time.time() >= loaded_at else 503, {})
            elif self.path == "/v1/models":
                self.reply(200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "vllm"}]})
            else:
                self.reply(404, {"detail": "Not Found"})

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            req = json.loads(self.rfile.read(n) or b"{}")
            if self.path != "/v1/completions":
                return self.reply(404, {"detail": "Not Found"})
            if req.get("model") != model:
                return self.reply(404, {"error": {"message": f"The model `{req.get('model')}` does not exist."}})
            wedge = os.environ.get("STANDIN_WEDGE_FILE")
            while wedge and os.path.exists(wedge):
                time.sleep(0.1)
            self.reply(200, {"id": "cmpl-standin", "object": "text_completion", "model": model,
                             "choices": [{"index": 0, "text": " pong", "finish_reason": "length"}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        def log_message(self, fmt, *args):
            print("INFO: " + fmt % args, flush=True)

    srv = ThreadingHTTPServer((opts["host"], opts["port"]), H)
    print(f"INFO Starting vLLM server on http://{opts['host']}:{opts['port']}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
