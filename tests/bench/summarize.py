#!/usr/bin/env python3
"""Reads criterion's estimates (target/criterion/<group>/<bench>/new/) and the ncclient
comparison's JSON, and prints Markdown tables: absolute numbers and ratios against the
baseline measured in the same run. Used by tests/bench/run; BENCHMARKS.md quotes its output.

    python3 tests/bench/summarize.py [--criterion DIR]... [--ncclient JSON]...

Times are criterion's median estimate. A ratio is (time per byte, or per operation) divided
by the baseline's from the same run, so 2.0x means twice the baseline's time: lower is
better. Given several runs (--criterion once per run), each figure is the median over the
runs with the range across them.
"""
import argparse
import json
import os
import pathlib
import statistics

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))

# (group, baseline, [benches], unit) -- unit "bytes" reports GiB/s, "ops" reports ops/s,
# None reports time only.
ADAPTERS = ["blocking", "tokio", "smol"]

TABLES = [
    ("framing", ["baseline_memcpy", "baseline_memmem"], [
        "baseline_memcpy", "baseline_memcpy_fresh", "baseline_memcpy_grow_64k",
        "baseline_memcpy_grow_64k_offset11", "baseline_memmem",
        "baseline_utf8", "decoder_eom_64k", "decoder_chunked_one_64k", "decoder_chunked_4k_64k",
        "session_reply_chunked_64k", "session_reply_eom_64k", "session_send_reply"], "bytes"),
    ("rpc_tiny", ["raw_rustls"], ["raw_rustls"] + ADAPTERS + [
        "tokio_current_thread", "tokio_in_task", "smol_in_task"], None),
    ("pipelined_64", ["raw_rustls"],
        ["raw_rustls"] + ADAPTERS + ["tokio_current_thread", "blocking_send_recv"], "ops"),
    ("get_config_10mb", ["raw_rustls_4k", "raw_rustls_4k_fresh", "raw_rustls"], [
        "raw_rustls", "raw_rustls_4k", "raw_rustls_4k_fresh"] + ["%s_%s" % (a, m) for a in ADAPTERS
                                           for m in ("call", "streamed")]
        + ["blocking_16k_call"], "bytes"),
    ("get_config_256mb", ["raw_rustls_4k", "raw_rustls_4k_fresh"], [
        "raw_rustls_4k", "raw_rustls_4k_fresh"] + ["%s_%s" % (a, m) for a in ADAPTERS for m in ("call", "streamed")],
        "bytes"),
    ("connect", ["raw_rustls_handshake"], ["raw_rustls_handshake"] + ADAPTERS, None),
    ("in_memory_10mb", ["raw_rustls_send_4k", "raw_rustls_receive_4k"], [
        "raw_rustls_send", "raw_rustls_send_4k", "tlssession_send_reply", "raw_rustls_receive",
        "raw_rustls_receive_4k", "tlssession_receive_reply"], "bytes"),
    ("ssh_rpc_tiny", ["raw_russh"], ["raw_russh"] + ADAPTERS, None),
    ("ssh_get_config_10mb", ["raw_russh"], ["raw_russh"] + ["%s_%s" % (a, m) for a in ADAPTERS
                                                           for m in ("call", "streamed")],
     "bytes"),
    ("ssh_connect", ["raw_russh"], ["raw_russh"] + ADAPTERS, None),
]


def load_one(crit, group, bench):
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


def load(crits, group, bench):
    """One result per run (None where the run lacks it)."""
    return [load_one(c, group, bench) for c in crits]


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


def spread(values, fmt, with_range=True):
    """median, and the range across runs when there is more than one."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = fmt(statistics.median(values))
    if len(values) == 1 or not with_range:
        return m
    return "%s (%s–%s)" % (m, fmt(min(values)), fmt(max(values)))


def table(crits, group, baselines, benches, unit):
    rows = {b: load(crits, group, b) for b in benches}
    base = {b: rows.get(b) or load(crits, group, b) for b in baselines}
    cols = ["benchmark", "median time", "± MAD"]
    if unit == "bytes":
        cols.append("throughput")
    if unit == "ops":
        cols.append("ops/s")
    cols += ["vs %s" % b for b in baselines]
    out = ["#### `%s`" % group, "", "| " + " | ".join(cols) + " |",
           "|" + "---|" * len(cols)]
    for name in benches:
        runs = rows[name]
        if all(r is None for r in runs):
            out.append("| %s | not run |" % name + " |" * (len(cols) - 2))
            continue
        ok = [r for r in runs if r is not None]
        cells = [name, spread([r["median_ns"] for r in ok], fmt_time),
                 fmt_time(statistics.median([r["mad_ns"] for r in ok]))]
        if unit == "bytes":
            cells.append(spread([r["bytes"] / (r["median_ns"] / 1e9) / 2**30 for r in ok if r["bytes"]],
                                lambda v: "%.2f GiB/s" % v, with_range=False))
        elif unit == "ops":
            cells.append(spread([r["elements"] / (r["median_ns"] / 1e9) for r in ok if r["elements"]],
                                lambda v: "%.0f" % v, with_range=False))
        for b in baselines:
            ratios = [per_unit(r) / per_unit(br) for r, br in zip(runs, base[b])
                      if r is not None and br is not None]
            cells.append(spread(ratios, lambda v: "%.2fx" % v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def linearity_table(crits):
    """The same message fed 1 KiB and 1 MiB at a time: a linear decoder takes about the
    same time either way, so the 1 KiB / 1 MiB ratio should be close to 1."""
    out = ["#### `linearity` (same 10 MB message, 1 KiB vs 1 MiB per call)", "",
           "| what | 1 KiB pieces | 1 MiB pieces | 1 KiB / 1 MiB |", "|---|---|---|---|"]
    for what in ["decoder_eom", "session_reply_chunked"]:
        a = load(crits, "linearity", what + "_1k")
        b = load(crits, "linearity", what + "_1m")
        pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
        if not pairs:
            out.append("| %s | not run | | |" % what)
            continue
        out.append("| %s | %s | %s | %s |" % (
            what, spread([x["median_ns"] for x, _ in pairs], fmt_time),
            spread([y["median_ns"] for _, y in pairs], fmt_time),
            spread([x["median_ns"] / y["median_ns"] for x, y in pairs], lambda v: "%.2fx" % v)))
    return "\n".join(out)


def ratios(crits, group, bench, base):
    """Per run: time per unit of `bench` / that of `base` in the same run."""
    return [per_unit(r) / per_unit(b) for r, b in zip(load(crits, group, bench),
                                                      load(crits, group, base))
            if r is not None and b is not None]


def fmt_x(v):
    return "%.2fx" % v


def first_byte_table(crits):
    """Time to the first payload byte: 10 MB vs 256 MiB, and their ratio (a size-independent
    first byte gives about 1.0x)."""
    out = ["#### `first_byte` (from `call_streamed` to the first payload piece)", "",
           "| client / answer | 10 MB | 256 MiB | 256 MiB / 10 MB |", "|---|---|---|---|"]
    rows = [("raw_rustls_4k", "raw rustls (request to first plaintext byte)")]
    for a in ADAPTERS:
        rows.append((a, "%s, streamed answer" % a))
        rows.append((a + "@prebuilt", "%s, prebuilt `Reply::data_unchecked`" % a))
    for key, label in rows:
        name, _, pre = key.partition("@")
        suffix = "_prebuilt" if pre else ""
        small = load(crits, "first_byte", "%s_10m%s" % (name, suffix))
        big = load(crits, "first_byte", "%s_256m%s" % (name, suffix))
        pairs = [(x, y) for x, y in zip(small, big) if x is not None and y is not None]
        if not pairs:
            out.append("| %s | not run | | |" % label)
            continue
        out.append("| %s | %s | %s | %s |" % (
            label, spread([x["median_ns"] for x, _ in pairs], fmt_time),
            spread([y["median_ns"] for _, y in pairs], fmt_time),
            spread([y["median_ns"] / x["median_ns"] for x, y in pairs], fmt_x)))
    return "\n".join(out)


def goals_table(crits, rss):
    """The project's goals, one row each, a column per adapter."""
    out = ["#### Goals (each ratio within its run; median over runs, range in brackets)", "",
           "| what | goal | blocking | tokio | smol |", "|---|---|---|---|---|"]

    def row(what, goal, cell):
        out.append("| %s | %s | %s |" % (what, goal, " | ".join(cell(a) for a in ADAPTERS)))

    def ratio_cell(group, bench_fmt, base):
        return lambda a: spread(ratios(crits, group, bench_fmt % a, base), fmt_x)

    row("tiny `<get-config>` round trip, TLS, vs raw rustls", "<= 1.25x",
        ratio_cell("rpc_tiny", "%s", "raw_rustls"))

    def ops(a):
        rs = [r for r in load(crits, "pipelined_64", a) if r is not None]
        return spread([r["elements"] / (r["median_ns"] / 1e9) for r in rs],
                      lambda v: "{:,.0f}/s".format(v))
    row("tiny RPCs, 64 in flight, TLS", ">= 100,000/s", ops)
    row("the same, the blocking client from one thread (`send`/`recv`)", ">= 100,000/s",
        lambda a: ops("blocking_send_recv") if a == "blocking" else "-")
    for group, size in [("get_config_10mb", "10 MB"), ("get_config_256mb", "256 MiB")]:
        for mode, label in [("call", "`call`"), ("streamed", "`call_streamed`")]:
            row("%s get-config, TLS, %s, vs raw rustls (4 KiB records)" % (size, label),
                "<= 1.1x", ratio_cell(group, "%%s_%s" % mode, "raw_rustls_4k"))
            if mode == "call":
                row("%s get-config, TLS, `call`, vs raw rustls into a fresh buffer" % size,
                    "-", ratio_cell(group, "%s_call", "raw_rustls_4k_fresh"))

    def ttfb(suffix):
        def cell(a):
            small = load(crits, "first_byte", "%s_10m%s" % (a, suffix))
            big = load(crits, "first_byte", "%s_256m%s" % (a, suffix))
            return spread([y["median_ns"] / x["median_ns"] for x, y in zip(small, big)
                           if x is not None and y is not None], fmt_x)
        return cell
    row("first payload byte, 256 MiB / 10 MB, streamed answer", "~1x", ttfb(""))
    row("first payload byte, 256 MiB / 10 MB, prebuilt answer", "~1x", ttfb("_prebuilt"))
    row("tiny `<get-config>` round trip, SSH, vs raw russh", "-",
        ratio_cell("ssh_rpc_tiny", "%s", "raw_russh"))
    for mode, label in [("call", "`call`"), ("streamed", "`call_streamed`")]:
        row("10 MB get-config, SSH, %s, vs raw russh" % label, "-",
            ratio_cell("ssh_get_config_10mb", "%%s_%s" % mode, "raw_russh"))
    if rss:
        big = max(r["size"] for r in rss)

        def peak(side):
            def cell(a):
                rs = [r for r in rss if r["client"] == a and r["size"] == big
                      and r["mode"] == "streamed"]
                vals = [r["%s_time_max_rss_kib" % side] or r["%s_vmhwm_kib" % side] for r in rs]
                return spread([v for v in vals if v], lambda v: "%.1f MiB" % (v / 1024))
            return cell
        row("peak RSS, client, %d MiB streamed reply" % (big >> 20), "<= 32 MiB", peak("client"))
        row("peak RSS, server, %d MiB streamed answer" % (big >> 20), "<= 32 MiB", peak("server"))
    return "\n".join(out)


def rss_rows(paths):
    rows = []
    for path in paths:
        if pathlib.Path(path).exists():
            rows += json.loads(pathlib.Path(path).read_text())["rows"]
    return rows


def rss_table(rows):
    out = ["#### Peak RSS, streaming over loopback TLS (server and client in separate processes)",
           "", "| client | server | mode | reply | client peak RSS | server peak RSS "
           "| client time | first byte | rate |", "|---|---|---|---|---|---|---|---|---|"]

    def mib(kib):
        return "-" if not kib else "%.1f MiB" % (kib / 1024)
    for r in rows:
        out.append("| %s | %s | %s | %d MiB | %s | %s | %.2f s | %s | %.0f MiB/s |" % (
            r["client"], r["server"], r["mode"], r["size"] >> 20,
            mib(r["client_time_max_rss_kib"] or r["client_vmhwm_kib"]),
            mib(r["server_time_max_rss_kib"] or r["server_vmhwm_kib"]), r["seconds"],
            "-" if r["first_byte_s"] is None else "%.2f ms" % (r["first_byte_s"] * 1e3),
            r["bytes"] / r["seconds"] / (1 << 20)))
    return "\n".join(out)


def ncclient_table(path):
    d = json.loads(pathlib.Path(path).read_text())
    out = ["#### ncclient vs our blocking client, same server, same run (%d-byte `<data>`, %s)"
           % (d["bytes"], d.get("transport", "tls").upper()),
           "", "| client | status | hello | 1st get-config | later get-configs (median) | all get-configs (s) | wall |",
           "|---|---|---|---|---|---|---|"]
    for c in d["clients"]:
        def s(x):
            return "-" if x is None else "%.3f s" % x
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            c["client"], c["status"], s(c["hello_s"]), s(c["first_get_s"]),
            s(c["later_gets_median_s"]), ", ".join("%.3f" % g for g in c["gets_s"]) or "-",
            s(c.get("wall_s"))))
        for line in c.get("tail", [])[-1:]:
            out.append("| | `%s` | | | | | |" % line.replace("|", "/")[:160])
    def r(x):
        return "-" if x is None else "%.1fx" % x
    out.append("")
    out.append("ncclient / ours (ours = median of the two Rust runs): hello %s, 1st get-config %s, "
               "later get-configs %s" % (r(d["ratio_hello"]), r(d["ratio_first_get"]),
                                         r(d["ratio_later_gets"])))
    return "\n".join(out)


def ratio_table(path):
    """`bench_rpc_cost ratio` output (tests/bench/run): each block starts with raw rustls's
    line; a floor (`raw_*`) in a block is the floor of the pairs after it in that block."""
    out = ["#### Small RPCs against raw rustls in interleaved slices (`bench_rpc_cost ratio`)",
           "",
           "Each ratio is the median of per-slice ratios: slices of raw rustls and of the pair "
           "alternate a few milliseconds apart, so the machine's slow and fast moments hit both. "
           "A floor is raw rustls on the runtime's own socket, called the same way; "
           "pair / floor divides the two medians.",
           "",
           "| in flight | pair | ratio to raw rustls | quartiles | per RPC | RPCs/s | raw rustls per RPC | pair / floor |",
           "|---|---|---|---|---|---|---|---|"]
    depth = raw_us = floor = None
    for line in pathlib.Path(path).read_text().splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != "RATIO":
            continue
        name = words[1]
        fields = dict(w.split("=", 1) for w in words[2:] if "=" in w)
        if name == "raw":
            depth, raw_us, floor = int(fields["depth"]), float(fields["median_us"]), None
            continue
        median = float(fields["median"].rstrip("x"))
        us = float(fields["median_us"])
        if name.startswith("raw_"):
            floor = median
        versus = "-" if floor is None or name.startswith("raw_") else "%.2fx" % (median / floor)
        out.append("| %s | %s | %.2fx | %s-%s | %.1f µs | %s | %.1f µs | %s |" % (
            depth, name, median, fields["q1"], fields["q3"], us,
            "{:,.0f}".format(1e6 / us), raw_us, versus))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion", type=pathlib.Path, action="append", default=[],
                    help="criterion output directory of one run; repeat for several runs")
    ap.add_argument("--ncclient", type=pathlib.Path, action="append", default=[])
    ap.add_argument("--rss", type=pathlib.Path, action="append", default=[],
                    help="stream_rss.py JSON output")
    ap.add_argument("--ratio", type=pathlib.Path, action="append", default=[],
                    help="bench_rpc_cost ratio output (tests/bench/run)")
    args = ap.parse_args()
    crits = args.criterion or [TARGET / "criterion"]
    if len(crits) > 1:
        print("Figures are the median over %d runs, with the range across runs in brackets; "
              "each ratio is computed within its run, then summarised the same way.\n" % len(crits))
    rss = rss_rows(args.rss)
    print(goals_table(crits, rss))
    print()
    for group, baselines, benches, unit in TABLES:
        if any((c / group).exists() for c in crits):
            print(table(crits, group, baselines, benches, unit))
            print()
        if group == "framing" and any((c / "linearity").exists() for c in crits):
            print(linearity_table(crits))
            print()
        if group == "get_config_256mb" and any((c / "first_byte").exists() for c in crits):
            print(first_byte_table(crits))
            print()
    if rss:
        print(rss_table(rss))
        print()
    for path in args.ncclient:
        if path.exists():
            print(ncclient_table(path))
            print()
    for path in args.ratio:
        if path.exists():
            print(ratio_table(path))
            print()


if __name__ == "__main__":
    main()
