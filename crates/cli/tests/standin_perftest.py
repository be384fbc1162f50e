#!/usr/bin/env python3
"""Stand-in for perftest's ib_write_bw / ib_write_lat on a node without RDMA (this kernel has
none). It behaves like the real tools where sparkctl can tell: `--help` lists the flags, an
unknown `--ib-dev` fails as perftest does, the server listens on `--port` and serves one client,
the client connects over the rail to the server's address (so a down rail or a missing server
fails like perftest, with the real "Couldn't connect" output), and on success it prints a real
output from the fixtures. The node's state is `standin.json` next to its `bin/` directory:
{"fixtures": DIR, "synthetic": DIR, "devices": [...], "modes": {DEV: "healthy"|"degraded"},
 "help_drop": [flags to leave out of --help]}."""
import json, os, socket, sys, time

tool = os.path.basename(sys.argv[0])
node_dir = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
cfg = json.load(open(os.path.join(node_dir, "standin.json")))

# perftest's usage text, abridged to the lines of the flags sparkctl checks (wording as in
# perftest's own usage output).
HELP = """ Usage:
  {t}            start a server and wait for connection
  {t} <host>     connect to server at <host>

 Options:
  -d, --ib-dev=<dev>  Use IB device <dev> (default first device found)
  -D, --duration  Run test for a customized period of seconds.
  -F, --CPU-freq  Do not show a warning even if cpufreq_ondemand module is loaded, and cpu-freq is not on max.
  -p, --port=<port>  Listen on/connect to port <port> (default 18515)
  -q, --qp=<num of qp's>  Num of qp's(default 1)
  -R, --rdma_cm  Connect QPs with rdma_cm and run test on those QPs
  --report_gbits  Report Max/Average BW of test in Gbit/sec (instead of MiB/sec)
"""

def real(rel, base="fixtures"):
    text = open(os.path.join(cfg[base], rel)).read()
    return "".join(l + "\n" for l in text.splitlines() if not l.startswith("# "))

args = sys.argv[1:]
if "--help" in args or "-h" in args:
    text = HELP.format(t=tool)
    for flag in cfg.get("help_drop", []):
        text = text.replace(flag, "")
    print(text)
    sys.exit(0)

def opt(name, default=None):
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default

dev = opt("--ib-dev")
port = int(opt("--port", "18515"))
takes_value = {"--ib-dev", "--port", "--qp", "--duration"}
positional = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] not in takes_value)]
server_ip = positional[0] if positional else None

if dev not in cfg["devices"]:
    # perftest's wording when -d names no device of this node (no public paste found: synthetic).
    print(f" IB device {dev} not found\n Unable to find the Infiniband/RoCE device")
    sys.exit(1)

if server_ip is None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
    s.settimeout(120)
    print("\n************************************\n* Waiting for client to connect... *\n************************************", flush=True)
    conn, _ = s.accept()
    conn.recv(64)
    conn.sendall(b"ok\n")
    conn.close()
    sys.exit(0)

deadline = time.time() + 3
while True:
    try:
        c = socket.create_connection((server_ip, port), timeout=1)
        # Like perftest, the run lasts --duration seconds with the server connected.
        time.sleep(min(float(opt("--duration", "0")), 120))
        c.sendall(b"hello\n")
        c.recv(8)
        c.close()
        break
    except OSError:
        if time.time() > deadline:
            out = real("perftest/ib_write_bw-client-couldnt-connect-socket-init.txt")
            sys.stdout.write(out.replace("192.168.125.211:18515", f"{server_ip}:{port}"))
            sys.exit(1)
        time.sleep(0.2)

if tool == "ib_write_lat":
    sys.stdout.write(real("perftest/ib_write_lat-dgx-spark-client-rdmacm.txt").replace("rocep1s0f1", dev))
elif cfg["modes"].get(dev, "healthy") == "degraded":
    sys.stdout.write(real("ib_write_bw-degraded-13g.txt", "synthetic").replace("rocep1s0f1", dev))
else:
    sys.stdout.write(real("perftest/ib_write_bw-dgx-spark-client-4qp-rdmacm-gbits.txt").replace("rocep1s0f1", dev))
