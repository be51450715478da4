#!/usr/bin/env python3
"""ncclient against our netconf-blocking server, timed in the same run as our Rust client.

    python3 tests/bench/ncclient_get_config.py [--transport tls|ssh] [--bytes N] [--repeat N]
                                              [--timeout S] [--json PATH]

Steps:
  1. makes sure a venv has ncclient 0.7.x: target/bench-venv (python3 -m venv + pip install),
     or target/interop-venv when the interop tests already made one with ncclient in it;
  2. builds and starts `tests/examples/bench_server.rs` (release): a netconf-blocking Server
     whose <get-config> answers with a prebuilt <data> of --bytes bytes (10 MB by default),
     listening for TLS and SSH;
  3. times our Rust blocking client (the helper's `get` or `get-ssh` mode) against it: hello,
     then --repeat get-configs;
  4. times ncclient the same way (TLS: manager.connect_tls(..., protocol=ssl.PROTOCOL_TLS_CLIENT);
     SSH: manager.connect with a password, paramiko underneath, host key not checked),
     in a child process with ncclient's own RPC timeout and a hard timeout (INTEROP.md:
     ncclient takes seconds and may hang on TLS); a timeout or a failure is recorded, not
     fatal, and ncclient is tried again on a new connection (--attempts, default 2);
  5. times the Rust client once more, so a load change during the run shows;
  6. prints the figures and the ncclient/Rust ratios, and writes them as JSON to --json.

The child mode (--ncclient-child) is the ncclient client itself, run under the venv's python.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
VENV = TARGET / "bench-venv"


def log(msg):
    print("ncclient_get_config: %s" % msg, file=sys.stderr, flush=True)


# ----- child: the ncclient client -----

def ncclient_child(args):
    import ssl

    from ncclient import manager

    t0 = time.monotonic()
    if args.transport == "ssh":
        m = manager.connect(host="127.0.0.1", port=args.port, username="bench",
                            password="bench", hostkey_verify=False, allow_agent=False,
                            look_for_keys=False, timeout=args.rpc_timeout)
    else:
        m = manager.connect_tls(host="127.0.0.1", port=args.port, certfile=args.cert,
                                keyfile=args.key, ca_certs=args.ca,
                                protocol=ssl.PROTOCOL_TLS_CLIENT, timeout=args.rpc_timeout)
    print("HELLO seconds=%.4f" % (time.monotonic() - t0), flush=True)
    for _ in range(args.repeat):
        t = time.monotonic()
        reply = m.get_config(source="running")
        size = len(reply.xml)
        print("GET bytes=%d seconds=%.4f" % (size, time.monotonic() - t), flush=True)
    try:
        m.close_session()
    except Exception as e:  # the figures are already out
        print("CLOSE failed: %s" % e, flush=True)


# ----- parent: orchestration -----

def has_ncclient(py):
    return py.exists() and subprocess.run(
        [str(py), "-c", "import ncclient"], capture_output=True).returncode == 0


def ensure_venv():
    py = VENV / "bin" / "python"
    interop = TARGET / "interop-venv" / "bin" / "python"
    if not has_ncclient(py) and has_ncclient(interop):
        py = interop
    if not has_ncclient(py):
        py = VENV / "bin" / "python"
        log("creating %s with ncclient 0.7.x" % VENV)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "ncclient>=0.7,<0.8"], check=True)
    version = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('ncclient'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    return py, version


def build_helper():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "netconf-tests",
                    "--example", "bench_server"], cwd=ROOT, check=True)
    return TARGET / "release" / "examples" / "bench_server"


def parse_lines(text):
    """HELLO/GET lines -> {'hello': s, 'gets': [(bytes, s), ...], 'other': [...]}"""
    out = {"hello": None, "gets": [], "other": []}
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
        if line.startswith("HELLO "):
            out["hello"] = float(fields["seconds"])
        elif line.startswith("GET "):
            out["gets"].append((int(fields["bytes"]), float(fields["seconds"])))
        elif line.strip():
            out["other"].append(line.strip())
    return out


def run_client(cmd, timeout):
    """Runs a client; returns its parsed lines plus status 'ok', 'failed (rc)' or 'timeout'."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        status = "ok" if proc.returncode == 0 else "failed (exit %d)" % proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        status = "timeout after %.0f s" % timeout
    result = parse_lines(output or "")
    result["status"] = status
    result["wall"] = time.monotonic() - t0
    if status != "ok":
        result["tail"] = (output or "").strip().splitlines()[-5:]
    return result


def summary(name, r):
    gets = [s for _, s in r["gets"]]
    return {
        "client": name,
        "status": r["status"],
        "wall_s": r["wall"],
        "hello_s": r["hello"],
        "first_get_s": gets[0] if gets else None,
        "later_gets_median_s": statistics.median(gets[1:]) if len(gets) > 1 else None,
        "gets_s": gets,
        "bytes": r["gets"][0][0] if r["gets"] else None,
        "tail": r.get("tail", []),
    }


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt(x, unit="s"):
    return "-" if x is None else ("%.4f %s" % (x, unit) if unit == "s" else "%.1fx" % x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ncclient-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int)
    ap.add_argument("--transport", choices=["tls", "ssh"], default="tls")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--rpc-timeout", type=float, default=60,
                    help="ncclient's own RPC timeout, seconds")
    ap.add_argument("--attempts", type=int, default=2,
                    help="ncclient runs (new connection each) until one completes")
    ap.add_argument("--bytes", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rust-repeat", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=90,
                    help="hard timeout for one ncclient run (connect, gets, close), seconds")
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    if args.ncclient_child:
        return ncclient_child(args)

    py, version = ensure_venv()
    helper = build_helper()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="netconf-bench-"))
    server = subprocess.Popen([str(helper), "serve", str(workdir), str(args.bytes)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = dict(f.split("=", 1) for f in server.stdout.readline().split())
        port, ca, cert, key = info["port"], info["ca"], info["cert"], info["key"]
        if args.transport == "ssh":
            port = info["ssh_port"]
            rust_cmd = [str(helper), "get-ssh", port, info["fingerprint"], str(args.rust_repeat)]
        else:
            rust_cmd = [str(helper), "get", port, ca, cert, key, str(args.rust_repeat)]
        log("server on 127.0.0.1:%s (%s), %s-byte <data>" % (port, args.transport, args.bytes))
        log("rust client (1st) ...")
        rust1 = summary("rust netconf-blocking (before)", run_client(rust_cmd, 120))
        nc_cmd = [str(py), str(pathlib.Path(__file__).resolve()), "--ncclient-child",
                  "--port", port, "--transport", args.transport,
                  "--ca", ca, "--cert", cert, "--key", key,
                  "--repeat", str(args.repeat), "--rpc-timeout", str(args.rpc_timeout)]
        attempts = []
        for attempt in range(1, args.attempts + 1):
            log("ncclient %s attempt %d, rpc timeout %.0f s, hard timeout %.0f s ..."
                % (version, attempt, args.rpc_timeout, args.timeout))
            attempts.append(summary("ncclient %s (attempt %d)" % (version, attempt),
                                    run_client(nc_cmd, args.timeout)))
            if attempts[-1]["status"] == "ok":
                break
        nc = attempts[-1]
        log("rust client (2nd) ...")
        rust2 = summary("rust netconf-blocking (after)", run_client(rust_cmd, 120))
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    rust_first = statistics.median([x for x in (rust1["first_get_s"], rust2["first_get_s"]) if x is not None] or [0]) or None
    rust_later = statistics.median([x for x in (rust1["later_gets_median_s"], rust2["later_gets_median_s"]) if x is not None] or [0]) or None
    result = {
        "bytes": args.bytes,
        "transport": args.transport,
        "clients": [rust1] + attempts + [rust2],
        "ratio_first_get": ratio(nc["first_get_s"], rust_first),
        "ratio_later_gets": ratio(nc["later_gets_median_s"], rust_later),
        "ratio_hello": ratio(nc["hello_s"], statistics.median(
            [x for x in (rust1["hello_s"], rust2["hello_s"]) if x is not None] or [0]) or None),
    }
    print("get-config of a %d-byte <data> from the netconf-blocking server over %s (same run):"
          % (args.bytes, args.transport))
    print("%-34s %-22s %-12s %-14s %-16s %s" % ("client", "status", "hello", "1st get",
                                                "later (median)", "wall"))
    for c in result["clients"]:
        print("%-34s %-22s %-12s %-14s %-16s %s" % (c["client"], c["status"],
              fmt(c["hello_s"]), fmt(c["first_get_s"]), fmt(c["later_gets_median_s"]),
              fmt(c["wall_s"])))
        for line in c["tail"]:
            print("    | %s" % line[:200])
    print("ncclient / rust: hello %s, 1st get %s, later gets %s" % (
        fmt(result["ratio_hello"], "x"), fmt(result["ratio_first_get"], "x"),
        fmt(result["ratio_later_gets"], "x")))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
