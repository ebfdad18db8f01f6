#!/usr/bin/env python3
"""Smoke run of shmring_publishers_bench (ctest PublishersBenchSmoke, label "bench").

Runs every section very briefly and checks the JSON: each row and field is there, every
publisher's messages arrived in its order (out_of_order and topic_order_violations 0), lossless
delivery lost nothing, a lossy shmring subscriber counted exactly what it lost, the late joiner got
its whole history (history_missed 0), and nothing was left in /dev/shm or /tmp. iceoryx rows may be
skipped (not installed, or another RouDi runs here) but must then say why. No timing assertions:
rates and latencies must merely be there (non-zero).
"""
import json
import os
import subprocess
import sys
import tempfile

ROW_FIELDS = [
    "placement", "floor_ns", "section", "peer", "delivery", "publishers", "max_publishers", "skipped", "reason", "repetitions",
    "measured", "msgs_per_s", "msgs_per_s_min", "msgs_per_s_max", "published_per_s",
    "ratio_to_1_publisher", "p50_ns", "p50_ns_min", "p50_ns_max", "p99_ns", "p99_ns_min", "p99_ns_max",
    "p999_ns", "max_ns", "samples", "published", "received", "lost", "gaps", "out_of_order",
    "topic_order_violations", "lost_counted", "errors", "error",
]
TOP_FIELDS = [
    "benchmark", "date", "size", "seconds", "rate", "repetitions", "publisher_cpus", "subscriber_cpu",
    "placement_at_start", "floor_probe_ns", "load_average_before", "load_average_after", "iceoryx_available",
    "iceoryx_reason", "rows", "history",
]
HISTORY_FIELDS = [
    "placement", "floor_ns", "messages", "size", "capacity", "repetitions", "join_ns", "join_ns_min", "join_ns_max", "open_ns",
    "msgs_per_s", "history_missed", "out_of_order", "short", "errors", "error", "join_ns_each",
]

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def check_row(row):
    name = (f"{row['section']} {row['peer']} {row['delivery']} {row['publishers']}/{row['max_publishers']}"
            f" [{row.get('placement')}]")
    for field in ROW_FIELDS:
        check(field in row, f"{name}: no field {field}")
    check(row["placement"] in ("near", "far", "mixed", "same-core", "unknown", "none"), f"{name}: placement")
    if row["skipped"]:
        check(row["peer"] == "iceoryx", f"{name}: skipped ({row['reason']})")
        check(row["reason"] != "", f"{name}: skipped without a reason")
        return
    check(row["errors"] == 0, f"{name}: errors: {row['error']}")
    check(row["measured"] == row["repetitions"] and row["repetitions"] > 0, f"{name}: not every repetition measured")
    check(row["received"] > 0 and row["msgs_per_s"] > 0, f"{name}: nothing received")
    check(row["out_of_order"] == 0, f"{name}: {row['out_of_order']} out of order")
    check(row["topic_order_violations"] == 0, f"{name}: {row['topic_order_violations']} topic order violations")
    check(row["received"] + row["lost"] == row["published"], f"{name}: received + lost != published")
    if row["delivery"] == "lossless":
        check(row["lost"] == 0 and row["gaps"] == 0, f"{name}: lossless lost {row['lost']}")
    if row["peer"] == "shmring":
        check(row["lost_counted"] == row["lost"], f"{name}: lost() says {row['lost_counted']}, {row['lost']} missing")
    if row["section"] == "latency":
        check(row["samples"] > 0, f"{name}: no latency samples")
        check(0 < row["p50_ns"] <= row["p99_ns"] <= row["p999_ns"] <= row["max_ns"], f"{name}: percentiles out of order")
    if row["publishers"] == 1 and row["max_publishers"] == 1:
        check(row["ratio_to_1_publisher"] == 1.0, f"{name}: baseline ratio {row['ratio_to_1_publisher']}")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="pubbench_smoke_") as tmp:
        out = os.path.join(tmp, "out.json")
        proc = subprocess.Popen(
            [binary, "--seconds", "0.1", "--repetitions", "1", "--publishers", "1,2", "--rate", "20000",
             "--history", "10000", "--history-repetitions", "2", "--json", out],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        text, _ = proc.communicate(timeout=100)
        print(text)
        check(proc.returncode == 0, f"exit status {proc.returncode}")
        with open(out) as f:
            doc = json.load(f)
    left = [n for n in os.listdir("/dev/shm") if f"pubbench_{proc.pid}_" in n]
    left += [n for n in os.listdir("/tmp") if n.startswith(f"pubbench_{proc.pid}_")]
    check(not left, f"left behind: {left}")

    for field in TOP_FIELDS:
        check(field in doc, f"no field {field}")
    check(doc["load_average_before"] != "" and doc["placement_at_start"] != "", "no load average or placement")
    rows = doc["rows"]
    for row in rows:
        check_row(row)
    want = set()
    for section in ("throughput", "latency"):
        for delivery in ("lossless", "lossy"):
            for p in (1, 2):
                want.add((section, "shmring", delivery, p, p))
                want.add((section, "iceoryx", delivery, p, p))
        if section == "throughput":
            want.add((section, "shmring", "lossless", 1, 2))
            want.add((section, "shmring", "lossy", 1, 2))
    have = {(r["section"], r["peer"], r["delivery"], r["publishers"], r["max_publishers"]) for r in rows}
    check(want <= have, f"rows missing: {sorted(want - have)}")
    if not doc["iceoryx_available"]:
        check(doc["iceoryx_reason"] != "", "iceoryx unavailable without a reason")
        check("iceoryx was not available" in text, "the table does not say iceoryx was not available")

    history = doc["history"]
    for field in HISTORY_FIELDS:
        check(field in history, f"history: no field {field}")
    check(history["errors"] == 0, f"history: {history['error']}")
    check(history["history_missed"] == 0, f"history_missed {history['history_missed']}")
    check(history["out_of_order"] == 0 and history["short"] == 0, "history: out of order or short")
    check(len(history["join_ns_each"]) == 2 and history["join_ns"] > 0, "history: repetitions missing")

    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
