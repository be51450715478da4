#!/usr/bin/env python3
"""Reads criterion's estimates (target/criterion/<group>/<bench>/new/) and the ncclient
comparison's JSON, and prints Markdown tables: absolute numbers and ratios against the
baseline measured in the same run. Used by tests/bench/run; BENCHMARKS.md quotes its output.

    python3 tests/bench/summarize.py [--criterion DIR] [--ncclient JSON]

Times are criterion's median estimate. A ratio is (time per byte, or per operation) divided
by the baseline's, so 2.0x means twice the baseline's time: lower is better.
"""
import argparse
import json
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))

# (group, baseline, [benches], unit) -- unit "bytes" reports GiB/s, "ops" reports ops/s,
# None reports time only.
TABLES = [
    ("framing", ["baseline_memcpy", "baseline_memmem"], [
        "baseline_memcpy", "baseline_memcpy_fresh", "baseline_memcpy_grow_64k", "baseline_memmem",
        "baseline_utf8", "decoder_eom_64k", "decoder_chunked_one_64k", "decoder_chunked_4k_64k",
        "session_reply_chunked_64k", "session_reply_eom_64k", "session_send_reply"], "bytes"),
    ("get_config_10mb", ["raw_rustls"], [
        "raw_rustls", "blocking", "tokio", "blocking_client_tokio_server",
        "tokio_client_blocking_server"], "bytes"),
    ("in_memory_10mb", ["raw_rustls_send", "raw_rustls_receive"], [
        "raw_rustls_send", "tlssession_send_reply", "raw_rustls_receive",
        "tlssession_receive_reply"], "bytes"),
    ("connect", ["raw_rustls_handshake"], ["raw_rustls_handshake", "blocking", "tokio"], None),
    ("rpc_tiny", ["raw_rustls"], [
        "raw_rustls", "blocking", "tokio", "blocking_client_tokio_server",
        "tokio_client_blocking_server"], None),
    ("pipelined_64", ["raw_rustls"], ["raw_rustls", "tokio"], "ops"),
]


def load(crit, group, bench):
    d = crit / group / bench / "new"
    try:
        est = json.loads((d / "estimates.json").read_text())
        meta = json.loads((d / "benchmark.json").read_text())
    except FileNotFoundError:
        return None
    tp = meta.get("throughput") or {}
    return {
        "median_ns": est["median"]["point_estimate"],
        "mad_ns": est["median_abs_dev"]["point_estimate"],
        "bytes": tp.get("Bytes") or tp.get("BytesDecimal"),
        "elements": tp.get("Elements"),
    }


def fmt_time(ns):
    if ns >= 1e9:
        return "%.3f s" % (ns / 1e9)
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.1f µs" % (ns / 1e3)
    return "%.0f ns" % ns


def per_unit(r):
    n = r["bytes"] or r["elements"] or 1
    return r["median_ns"] / n


def table(crit, group, baselines, benches, unit):
    rows = {b: load(crit, group, b) for b in benches}
    base = {b: rows.get(b) or load(crit, group, b) for b in baselines}
    cols = ["benchmark", "median", "± MAD"]
    if unit == "bytes":
        cols.append("throughput")
    if unit == "ops":
        cols.append("ops/s")
    cols += ["vs %s" % b for b in baselines]
    out = ["#### `%s`" % group, "", "| " + " | ".join(cols) + " |",
           "|" + "---|" * len(cols)]
    for name in benches:
        r = rows[name]
        if r is None:
            out.append("| %s | not run |" % name + " |" * (len(cols) - 2))  # keep the columns
            continue
        cells = [name, fmt_time(r["median_ns"]), fmt_time(r["mad_ns"])]
        if unit == "bytes" and r["bytes"]:
            cells.append("%.2f GiB/s" % (r["bytes"] / (r["median_ns"] / 1e9) / 2**30))
        elif unit == "ops" and r["elements"]:
            cells.append("%.0f" % (r["elements"] / (r["median_ns"] / 1e9)))
        elif unit:
            cells.append("-")
        for b in baselines:
            br = base[b]
            cells.append("-" if br is None else "%.2fx" % (per_unit(r) / per_unit(br)))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def linearity_table(crit):
    """The same message fed 1 KiB and 1 MiB at a time: a linear decoder takes about the
    same time either way, so the 1 KiB / 1 MiB ratio should be close to 1."""
    out = ["#### `linearity` (same 10 MB message, 1 KiB vs 1 MiB per call)", "",
           "| what | 1 KiB pieces | 1 MiB pieces | 1 KiB / 1 MiB |", "|---|---|---|---|"]
    for what in ["decoder_eom", "session_reply_chunked"]:
        a = load(crit, "linearity", what + "_1k")
        b = load(crit, "linearity", what + "_1m")
        if a is None or b is None:
            out.append("| %s | not run | | |" % what)
            continue
        out.append("| %s | %s ± %s | %s ± %s | %.2fx |" % (
            what, fmt_time(a["median_ns"]), fmt_time(a["mad_ns"]), fmt_time(b["median_ns"]),
            fmt_time(b["mad_ns"]), a["median_ns"] / b["median_ns"]))
    return "\n".join(out)


def ncclient_table(path):
    d = json.loads(pathlib.Path(path).read_text())
    out = ["#### ncclient vs our blocking client, same server, same run (%d-byte `<data>`)" % d["bytes"],
           "", "| client | status | hello | 1st get-config | later get-configs (median) | all get-configs |",
           "|---|---|---|---|---|---|"]
    for c in d["clients"]:
        def s(x):
            return "-" if x is None else "%.3f s" % x
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            c["client"], c["status"], s(c["hello_s"]), s(c["first_get_s"]),
            s(c["later_gets_median_s"]), ", ".join("%.3f" % g for g in c["gets_s"]) or "-"))
    def r(x):
        return "-" if x is None else "%.1fx" % x
    out.append("")
    out.append("ncclient / ours (ours = median of the two Rust runs): hello %s, 1st get-config %s, "
               "later get-configs %s" % (r(d["ratio_hello"]), r(d["ratio_first_get"]),
                                         r(d["ratio_later_gets"])))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion", type=pathlib.Path, default=TARGET / "criterion")
    ap.add_argument("--ncclient", type=pathlib.Path)
    args = ap.parse_args()
    for group, baselines, benches, unit in TABLES:
        if (args.criterion / group).exists():
            print(table(args.criterion, group, baselines, benches, unit))
            print()
        if group == "framing" and (args.criterion / "linearity").exists():
            print(linearity_table(args.criterion))
            print()
    if args.ncclient and args.ncclient.exists():
        print(ncclient_table(args.ncclient))
        print()


if __name__ == "__main__":
    main()
