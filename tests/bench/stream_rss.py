#!/usr/bin/env python3
"""Peak memory (and time to the first byte) of streaming a huge <get-config> reply over
loopback TLS, with the server and the client in separate processes.

    python3 tests/bench/stream_rss.py [--sizes N,N] [--adapters a,b] [--json PATH] [--no-cli]

For each adapter (blocking, tokio, smol) and each size (256 MiB, 1 GiB and 4 GiB by default:
the peak must not grow with the reply):
  1. starts `bench_stream_rss serve ADAPTER DIR SIZE` (tests/examples/bench_stream_rss.rs)
     under `/usr/bin/time -v`: that adapter's server answering <get-config> with a streamed
     <data> generated as it is sent, 64 KiB at a time;
  2. runs `bench_stream_rss get ADAPTER ...` under `/usr/bin/time -v`: that adapter's client,
     `call_streamed` read to its end through a 64 KiB buffer (the bytes are discarded, as
     `-o /dev/null` would);
  3. records both processes' peak RSS (VmHWM, as each prints it, and time's "Maximum
     resident set size"), the client's wall time and its time to the first payload byte.
For contrast, the blocking client's buffered `call` of the smallest size (the whole payload
held at once). If `netconf get-config --help` (the CLI, built here) offers `-o`, the CLI
streams each size to a file too (--no-cli skips it). Prints a Markdown table and writes the
figures as JSON (--json). Timing never fails this script; a transfer that fails does.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
TIME = "/usr/bin/time"


def log(msg):
    print("stream_rss: %s" % msg, file=sys.stderr, flush=True)


def fields(line):
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def timed(cmd):
    """cmd under /usr/bin/time -v when it exists; the path of time's report."""
    if not os.path.exists(TIME):
        return cmd, None
    fd, path = tempfile.mkstemp(prefix="netconf-rss-", suffix=".time")
    os.close(fd)
    return [TIME, "-v", "-o", path] + cmd, path


def max_rss_kib(path):
    if path is None:
        return None
    try:
        text = pathlib.Path(path).read_text()
    finally:
        os.unlink(path)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return int(m.group(1)) if m else None


class Server:
    def __init__(self, helper, adapter, size, workdir):
        cmd, self.time_path = timed([str(helper), "serve", adapter, str(workdir), str(size)])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.info = fields(self.proc.stdout.readline())
        if "port" not in self.info:
            self.proc.kill()
            raise RuntimeError("the %s server did not start" % adapter)

    def stop(self):
        self.proc.stdin.close()
        rest = self.proc.stdout.read()
        self.proc.wait(timeout=60)
        line = next((l for l in rest.splitlines() if l.startswith("SERVER ")), "")
        return {"vmhwm_kib": int(fields(line).get("vmhwm_kib", 0)) or None,
                "time_max_rss_kib": max_rss_kib(self.time_path)}


def run_client(cmd, what):
    cmd, time_path = timed(cmd)
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t
    rss = max_rss_kib(time_path)
    if p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (what, p.returncode,
                                                        (p.stderr or p.stdout).strip()[-500:]))
    return p.stdout, rss, wall


def cli_has_output(netconf):
    help_text = subprocess.run([str(netconf), "get-config", "--help"], capture_output=True,
                               text=True).stdout
    return re.search(r"(^|\s)-o[,\s]|--output", help_text) is not None


def mib(kib):
    return "-" if kib is None else "%.1f MiB" % (kib / 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="%d,%d,%d" % (256 << 20, 1 << 30, 4 << 30))
    ap.add_argument("--adapters", default="blocking,tokio,smol")
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--no-cli", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    adapters = args.adapters.split(",")

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "netconf-tests", "--example",
                    "bench_stream_rss"], cwd=ROOT, check=True)
    helper = TARGET / "release" / "examples" / "bench_stream_rss"
    netconf = None
    if not args.no_cli:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "netconf-cli"], cwd=ROOT,
                       check=True)
        netconf = TARGET / "release" / "netconf"
        if not cli_has_output(netconf):
            log("`netconf get-config --help` has no -o/--output: the CLI is not measured")
            netconf = None

    rows = []
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="netconf-rss-"))
    try:
        plan = [(a, s, "streamed") for a in adapters for s in sizes]
        plan.append(("blocking", min(sizes), "buffered"))
        if netconf is not None:
            plan += [("cli", s, "streamed") for s in sizes]
        for adapter, size, mode in plan:
            server_adapter = "blocking" if adapter == "cli" else adapter
            log("%s client, %s server, %d bytes, %s ..." % (adapter, server_adapter, size, mode))
            server = Server(helper, server_adapter, size, workdir / ("%s-%d" % (adapter, size)))
            try:
                i = server.info
                if adapter == "cli":
                    out = workdir / "cli-out.xml"
                    cmd = [str(netconf), "--host", "127.0.0.1", "--port", i["port"], "--tls",
                           "--ca", i["ca"], "--cert", i["cert"], "--key", i["key"],
                           "get-config", "-o", str(out)]
                    stdout, rss, wall = run_client(cmd, "the CLI")
                    got = {"bytes": out.stat().st_size, "seconds": "%.3f" % wall}
                    out.unlink()
                else:
                    cmd = [str(helper), "get", adapter, i["port"], i["ca"], i["cert"], i["key"],
                           mode]
                    stdout, rss, wall = run_client(cmd, "the %s client" % adapter)
                    got = fields(next(l for l in stdout.splitlines() if l.startswith("GET ")))
            finally:
                srv = server.stop()
            row = {
                "client": adapter, "server": server_adapter, "mode": mode, "size": size,
                "bytes": int(got["bytes"]), "seconds": float(got["seconds"]),
                "first_byte_s": float(got["first_byte"]) if "first_byte" in got else None,
                "client_vmhwm_kib": int(got["vmhwm_kib"]) if "vmhwm_kib" in got else None,
                "client_time_max_rss_kib": rss,
                "server_vmhwm_kib": srv["vmhwm_kib"],
                "server_time_max_rss_kib": srv["time_max_rss_kib"],
            }
            # The CLI may add a final newline; the helper reports the payload exactly.
            if row["bytes"] < size or (adapter != "cli" and row["bytes"] != size):
                raise RuntimeError("short reply: %d of %d bytes" % (row["bytes"], size))
            rows.append(row)
            log("  client peak %s, server peak %s, %.2f s" % (
                mib(row["client_time_max_rss_kib"] or row["client_vmhwm_kib"]),
                mib(row["server_time_max_rss_kib"] or row["server_vmhwm_kib"]), row["seconds"]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print("| client | server | mode | reply | client peak RSS (VmHWM / time -v) "
          "| server peak RSS (VmHWM / time -v) | client time | first byte | rate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %d MiB | %s / %s | %s / %s | %.2f s | %s | %.0f MiB/s |" % (
            r["client"], r["server"], r["mode"], r["size"] >> 20,
            mib(r["client_vmhwm_kib"]), mib(r["client_time_max_rss_kib"]),
            mib(r["server_vmhwm_kib"]), mib(r["server_time_max_rss_kib"]), r["seconds"],
            "-" if r["first_byte_s"] is None else "%.2f ms" % (r["first_byte_s"] * 1e3),
            r["bytes"] / r["seconds"] / (1 << 20)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
