#!/usr/bin/env python3
"""One Markdown row per kernel launch of an `ncu --csv --page details` log (scripts/gpu-check's
ncu.csv): duration, DRAM and SM throughput against peak, occupancy, registers, shared memory.

  python3 bench/ncu_summary.py ncu.csv > ncu-summary.md
"""
import csv
import sys

rows = list(csv.reader(open(sys.argv[1])))
head = next(i for i, r in enumerate(rows) if r and r[0] == "ID")
h = rows[head]
col = {n: i for i, n in enumerate(h)}
want = ["Duration", "DRAM Throughput", "Memory Throughput", "L1/TEX Cache Throughput",
        "Compute (SM) Throughput", "Issue Slots Busy", "Executed Ipc Active",
        "Registers Per Thread", "Dynamic Shared Memory Per Block", "Grid Size",
        "Achieved Occupancy", "Local Memory Spilling Requests"]
launches = {}
for r in rows[head + 1:]:
    if len(r) <= col["Metric Value"]:
        continue
    key = int(r[col["ID"]])
    entry = launches.setdefault(key, {"kernel": r[col["Kernel Name"]]})
    name = r[col["Metric Name"]]
    if name in want:
        entry[name] = (r[col["Metric Value"]] + " " + r[col["Metric Unit"]]).strip()
print("| launch | kernel | " + " | ".join(want) + " |")
print("|" + "---|" * (len(want) + 2))
for key in sorted(launches):
    e = launches[key]
    kernel = e["kernel"].split("(")[0].replace("void unnamed>::", "")
    print(f"| {key} | {kernel} | " + " | ".join(e.get(w, "-") for w in want) + " |")
