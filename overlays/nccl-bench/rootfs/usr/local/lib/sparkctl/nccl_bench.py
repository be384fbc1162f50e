#!/usr/bin/env python3
"""Bus bandwidth between the nodes, measured inside the serving image.

spark-entrypoint runs this instead of `vllm serve` (SPARK_MODE=nccl-bench) with the same
rendezvous and per-node environment, passing vLLM's native multi-node arguments
(--nnodes/--node-rank/--master-addr/--master-port, --headless on workers); torchrun-style
RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT work too. One process per node, one GPU each.

torch.distributed with NCCL on a GPU, gloo without one: all_gather and all_reduce over a bounded
size sweep. Rank 0 prints nccl-tests' table (what `sparkctl nccl tests` reads), algbw = bytes /
time and busbw = algbw x (n-1)/n (all_gather) or 2(n-1)/n (all_reduce), as nccl-tests computes
them; the time of a size is the slowest rank's mean per-iteration time. NCCL_DEBUG=INFO goes to a
file per process, is echoed to stderr afterwards (spark-entrypoint's log and its NCCL watcher)
and gathered on rank 0, which writes --out/nccl-debug.log (for `sparkctl nccl check`) and
--out/result.json.

Exit 0 when every size ran and validated, 1 when an element came back wrong, 2 on bad arguments.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import socket
import sys
import tempfile
import time

# GB10 shares 128 GB between CPU and GPU; a 16 GiB all_gather froze a node. Sizes above this need
# --allow-large.
LARGE = 4 << 30


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip().upper().removesuffix("B").removesuffix("I")
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(s)


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["auto", "nccl", "gloo"], default=os.environ.get("SPARK_BENCH_BACKEND", "auto"))
    p.add_argument("--min-bytes", type=parse_size, default=parse_size(os.environ.get("SPARK_BENCH_MIN_BYTES", "1M")))
    p.add_argument("--max-bytes", type=parse_size, default=parse_size(os.environ.get("SPARK_BENCH_MAX_BYTES", "1G")))
    p.add_argument("--factor", type=int, default=2)
    p.add_argument("--iters", type=int, default=int(os.environ.get("SPARK_BENCH_ITERS", "20")))
    p.add_argument("--warmup", type=int, default=int(os.environ.get("SPARK_BENCH_WARMUP", "5")))
    p.add_argument("--ops", default=os.environ.get("SPARK_BENCH_OPS", "all_gather,all_reduce"))
    p.add_argument("--out", default=os.environ.get("SPARK_BENCH_OUT", "/tmp/nccl-bench"))
    p.add_argument("--allow-large", action="store_true")
    p.add_argument("--timeout", type=int, default=600, help="seconds a collective may block (a lost peer ends the run)")
    # vLLM's native multi-node arguments, as spark-entrypoint passes them.
    p.add_argument("--nnodes", type=int)
    p.add_argument("--node-rank", type=int)
    p.add_argument("--master-addr")
    p.add_argument("--master-port", type=int)
    p.add_argument("--headless", action="store_true")
    a = p.parse_args()
    ops = [o for o in a.ops.split(",") if o]
    bad = [o for o in ops if o not in ("all_gather", "all_reduce")]
    if bad:
        p.error(f"--ops: unknown `{bad[0]}` (all_gather, all_reduce)")
    a.ops = ops
    if a.factor < 2 or a.iters < 1 or a.warmup < 0 or a.min_bytes < 4 or a.max_bytes < a.min_bytes:
        p.error("sizes: need 4 <= --min-bytes <= --max-bytes, --factor >= 2, --iters >= 1")
    if a.max_bytes > LARGE and not a.allow_large:
        p.error(f"--max-bytes {a.max_bytes} is over {LARGE} (4 GiB): on GB10's shared memory large sweeps have frozen nodes; add --allow-large to insist")
    return a


def rendezvous(a):
    """(rank, world, master address, port) from the native arguments, else from the env."""
    env = os.environ
    rank = a.node_rank if a.node_rank is not None else int(env.get("RANK", "0"))
    world = a.nnodes if a.nnodes is not None else int(env.get("WORLD_SIZE", "1"))
    addr = a.master_addr or env.get("MASTER_ADDR", "127.0.0.1")
    port = a.master_port or int(env.get("MASTER_PORT", "29501"))
    return rank, world, addr, port


def write(path, text):
    """Whole or not at all: a temp file renamed over the name."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def log(msg):
    print(f"nccl-bench: {msg}", file=sys.stderr, flush=True)


def gather_json(obj, world, device, dist, torch):
    """Every rank's `obj` on every rank, as JSON bytes in tensors (all_gather_object needs
    numpy, which the image need not have)."""
    data = json.dumps(obj).encode()
    n = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    longest = max(int(x.item()) for x in sizes)
    buf = torch.zeros(longest, dtype=torch.uint8, device=device)
    buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if data else buf[:0]
    bufs = [torch.zeros_like(buf) for _ in range(world)]
    dist.all_gather(bufs, buf)
    return [json.loads(bytes(b[: int(k.item())].cpu().tolist()).decode()) for b, k in zip(bufs, sizes)]


def main():
    a = args()
    rank, world, addr, port = rendezvous(a)
    # NCCL reads these at its first init: set before torch.distributed starts it.
    os.environ.setdefault("NCCL_DEBUG", "INFO")
    os.environ.setdefault("NCCL_DEBUG_SUBSYS", "INIT,NET,ENV")
    debug_dir = tempfile.mkdtemp(prefix="nccl-bench-")
    os.environ.setdefault("NCCL_DEBUG_FILE", os.path.join(debug_dir, "nccl.%h.%p.log"))

    import torch
    import torch.distributed as dist

    backend = a.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        device_name = torch.cuda.get_device_name(local)
    else:
        device = torch.device("cpu")
        device_name = platform.processor() or platform.machine()
    log(f"rank {rank}/{world} on {socket.gethostname()}: {backend} on {device_name}, master {addr}:{port}")
    dist.init_process_group(
        backend,
        init_method=f"tcp://{addr}:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=a.timeout),
        # Binds the communicator to the GPU: NCCL initialises now, not at the first collective.
        **({"device_id": device} if backend == "nccl" else {}),
    )

    # The name changed in newer torch; the old one warns there.
    gather_into = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor

    def sync():
        if backend == "nccl":
            torch.cuda.synchronize(device)

    dtype, esize = torch.float32, 4
    sizes = []
    s = a.min_bytes
    while s <= a.max_bytes:
        # nccl-tests rounds each size down to whole elements per rank.
        count = max(world, s // esize // world * world)
        sizes.append(count)
        s *= a.factor

    def run(op, count, in_place):
        """Mean seconds per iteration on this rank; the buffers live for this size only."""
        if op == "all_gather":
            out = torch.empty(count, dtype=dtype, device=device)
            chunk = count // world
            inp = out.narrow(0, rank * chunk, chunk) if in_place else torch.ones(chunk, dtype=dtype, device=device)

            def once():
                gather_into(out, inp)

        else:
            # torch.distributed's all_reduce works in place only: both columns time it.
            buf = torch.ones(count, dtype=dtype, device=device)

            def once():
                dist.all_reduce(buf)

        for _ in range(a.warmup):
            once()
        sync()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            once()
        sync()
        return (time.perf_counter() - t0) / a.iters

    def wrong(op, count):
        """Elements that came back wrong from one validated run."""
        if op == "all_gather":
            chunk = count // world
            out = torch.empty(count, dtype=dtype, device=device)
            inp = torch.full((chunk,), float(rank + 1), dtype=dtype, device=device)
            gather_into(out, inp)
            want = torch.arange(1, world + 1, dtype=dtype, device=device).repeat_interleave(chunk)
        else:
            out = torch.full((count,), float(rank + 1), dtype=dtype, device=device)
            dist.all_reduce(out)
            want = torch.full((count,), float(world * (world + 1) // 2), dtype=dtype, device=device)
        return int((out != want).sum().item())

    def slowest(t):
        x = torch.tensor([t], dtype=torch.float64, device=device)
        dist.all_reduce(x, op=dist.ReduceOp.MAX)
        return float(x.item())

    def total(n):
        x = torch.tensor([n], dtype=torch.int64, device=device)
        dist.all_reduce(x)
        return int(x.item())

    results, table = [], []

    def emit(line):
        print(line, flush=True)
        table.append(line)

    for op in a.ops:
        factor = (world - 1) / world if op == "all_gather" else 2 * (world - 1) / world
        if rank == 0:
            emit(f"# Collective test starting: {op}_perf")
            emit(f"# nThread 1 nGpus 1 minBytes {a.min_bytes} maxBytes {a.max_bytes} step: {a.factor}(factor) warmup iters: {a.warmup} iters: {a.iters} validation: 1 backend: {backend} ranks: {world}")
            if op == "all_reduce":
                emit("# torch.distributed has no out-of-place all_reduce: both columns are in-place runs")
            emit("#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   busbw  #wrong")
            emit("#        (B)    (elements)                               (us)  (GB/s)  (GB/s)             (us)  (GB/s)  (GB/s)")
        busbws = []
        for count in sizes:
            size = count * esize
            cols = []
            for in_place in (False, True):
                t = slowest(run(op, count, in_place))
                algbw = size / t / 1e9
                cols.append({"time_us": t * 1e6, "algbw": algbw, "busbw": algbw * factor})
            bad = total(wrong(op, count))
            if backend == "nccl":
                torch.cuda.empty_cache()
            busbws.append(cols[0]["busbw"])
            results.append({"op": op, "size": size, "count": count, "type": "float", "out_of_place": cols[0], "in_place": cols[1], "wrong": bad})
            if rank == 0:
                redop = "none" if op == "all_gather" else "sum"
                emit(f"{size:12d}  {count:12d}     float  {redop:>6}      -1  " + "  ".join(f"{c['time_us']:9.1f}  {c['algbw']:6.2f}  {c['busbw']:6.2f}  {bad:6d}" for c in cols))
        if rank == 0:
            emit(f"# Avg bus bandwidth    : {sum(busbws) / len(busbws):.4f}")
            emit("#")
            emit(f"# Collective test concluded: {op}_perf")

    # NCCL's debug lines of this process, then everyone's on rank 0.
    mine = ""
    for f in sorted(glob.glob(os.path.join(debug_dir, "nccl.*.log"))):
        with open(f, errors="replace") as fh:
            mine += fh.read()
    if mine:
        sys.stderr.write(mine if mine.endswith("\n") else mine + "\n")
        sys.stderr.flush()
    info = {
        "rank": rank,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": device_name,
        "torch": torch.__version__,
        "nccl": ".".join(map(str, torch.cuda.nccl.version())) if backend == "nccl" else None,
    }
    gathered = gather_json((info, mine), world, device, dist, torch)
    if rank == 0:
        os.makedirs(a.out, exist_ok=True)
        write(os.path.join(a.out, "nccl-debug.log"), "".join(log for _, log in gathered))
        write(os.path.join(a.out, "table.txt"), "\n".join(table) + "\n")
        result = {
            "backend": backend,
            "world_size": world,
            "params": {"min_bytes": a.min_bytes, "max_bytes": a.max_bytes, "factor": a.factor, "iters": a.iters, "warmup": a.warmup, "dtype": "float32"},
            "ranks": [i for i, _ in gathered],
            "results": results,
        }
        write(os.path.join(a.out, "result.json"), json.dumps(result, indent=1, sort_keys=True) + "\n")
        log(f"wrote {a.out}/result.json, table.txt and nccl-debug.log")
    dist.barrier()
    dist.destroy_process_group()
    return 1 if any(r["wrong"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
