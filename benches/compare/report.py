#!/usr/bin/env python3
"""Turn run.sh's measurements (OUT/results.tsv, sizes.tsv, env.txt,
verify_failed.tsv) into one markdown table, with cairn's ratio to the best
of restic and borg and the issue-5 targets marked met or missed.

    report.py OUT_DIR > table.md

Exits 1 if any step failed (the table then says FAILED where it did).
"""
import sys
from collections import defaultdict

out = sys.argv[1]
TOOLS = ["cairn", "restic", "borg"]
PEERS = ["restic", "borg"]

env = dict(line.rstrip("\n").split("=", 1) for line in open(out + "/env.txt") if "=" in line)
runs = defaultdict(list)  # (step, tool) -> [(rc, wall, cpu, rss_kib)]
for line in open(out + "/results.tsv"):
    step, tool, rc, wall, cpu, rss = line.rstrip("\n").split("\t")
    runs[step, tool].append((int(rc), float(wall), float(cpu), int(rss)))
sizes = {}
for line in open(out + "/sizes.tsv"):
    key, tool, b = line.rstrip("\n").split("\t")
    sizes[key, tool] = int(b) if b else None
try:
    with open(out + "/verify_failed.tsv") as f:
        bad_verify = {tuple(line.rstrip("\n").split("\t")[:2]) for line in f if line.strip()}
except FileNotFoundError:
    bad_verify = set()

versions = max((len(v) for (s, _), v in runs.items() if s == "series-src"), default=0)
# step, label, size key, time target (x faster than the best peer),
# size target (cairn / smallest peer), absolute wall target (s)
STEPS = [
    ("first-src", "first snapshot: source tree", "first-src", 2, None, None),
    ("first-db", "first snapshot: SQLite", "first-db", 2, None, None),
    ("first-small", "first snapshot: small files", "first-small", 2, None, None),
    ("series-src", "%d near-identical versions: source tree (total, mean/version)" % versions, "series-src", 3, 0.8, None),
    ("series-db", "%d versions: SQLite, ~1%% rows updated (total, mean/version)" % versions, "series-db", 3, 0.5, None),
    ("nochange-small", "no-change re-snapshot: small files", "nochange-small", 5, None, None),
    ("diff-src", "diff first↔last: source tree", None, 10, None, 0.1),
    ("diff-small", "diff first↔no-change: small files", None, 10, None, 0.1),
    ("restore-src", "restore latest (verified): source tree", None, 3, None, None),
    ("restore-db", "restore latest (verified): SQLite", None, 3, None, None),
    ("restore-small", "restore latest (verified): small files", None, 3, None, None),
    ("forget-src", "forget keep-last 3 + gc/prune: source tree", "forget-src", 2, None, None),
    ("forget-db", "forget keep-last 3 + gc/prune: SQLite", "forget-db", 2, None, None),
    ("check-src", "check: source tree", None, None, None, None),
    ("check-db", "check: SQLite", None, None, None, None),
    ("check-small", "check: small files", None, None, None, None),
    ("readdata-src", "check, read all data: source tree", None, 2, None, None),
    ("readdata-db", "check, read all data: SQLite", None, 2, None, None),
    ("readdata-small", "check, read all data: small files", None, 2, None, None),
]


def agg(step, tool):
    rs = runs.get((step, tool))
    if not rs:
        return None
    failed = [r[0] for r in rs if r[0] != 0]
    return {
        "rc": failed[0] if failed else 0,
        "verify_failed": (step, tool) in bad_verify,
        "wall": sum(r[1] for r in rs),
        "cpu": sum(r[2] for r in rs),
        "rss": max(r[3] for r in rs) / 1024.0,
        "n": len(rs),
    }


def ok(a):
    return a is not None and a["rc"] == 0 and not a["verify_failed"]


def times(x):
    return "%.1f×" % x if x < 100 else "%.0f×" % x


failures, met, missed = 0, [], []
lines = [
    "| step | tool | wall s | CPU s | peak RSS MiB | repo MiB | cairn vs best peer | targets |",
    "|---|---|---:|---:|---:|---:|---|---|",
]
for step, label, skey, ttarget, starget, abs_target in STEPS:
    a = {t: agg(step, t) for t in TOOLS}
    if all(v is None for v in a.values()):
        continue
    c = a["cairn"]
    peers = [t for t in PEERS if ok(a[t])]
    for t in TOOLS:
        x = a[t]
        if x is None:
            wall = cpu = rss = "—"
        elif not ok(x):
            failures += 1
            wall = "**FAILED** (%s)" % ("verify" if x["verify_failed"] else "exit %d" % x["rc"])
            cpu = rss = "—"
        else:
            wall = "%.3f" % x["wall"] if x["wall"] < 1 else "%.2f" % x["wall"]
            if x["n"] > 1:
                wall += " (%.2f)" % (x["wall"] / x["n"])
            cpu = "%.2f" % x["cpu"]
            rss = "%.1f" % x["rss"]
        size = sizes.get((skey, t)) if skey else None
        size_s = "%.1f" % (size / 2**20) if size is not None else ""
        cmp_s, tgt_s = "", ""
        if t == "cairn":
            cmp, tgt = [], []
            if ok(c) and peers:
                best = min(peers, key=lambda p: a[p]["wall"])
                r = a[best]["wall"] / c["wall"] if c["wall"] > 0 else float("inf")
                cmp.append(("time %s faster than %s" % (times(r), best)) if r >= 1
                           else ("time %s slower than %s" % (times(1 / r), best)))
                low = min(peers, key=lambda p: a[p]["rss"])
                rr = c["rss"] / a[low]["rss"]
                cmp.append("RSS %.2f× %s" % (rr, low))
                if skey and size is not None:
                    speers = [p for p in peers if sizes.get((skey, p))]
                    if speers:
                        small = min(speers, key=lambda p: sizes[skey, p])
                        sr = size / sizes[skey, small]
                        cmp.append("size %.2f× %s" % (sr, small))
                        if starget:
                            good = sr <= starget
                            tgt.append("size ≤%.1f×: %s" % (starget, "**met**" if good else "**missed**"))
                            (met if good else missed).append("%s: size %.2f× (target ≤%.1f×)" % (label, sr, starget))
                if ttarget:
                    good = r >= ttarget
                    tgt.append("≥%d× faster: %s" % (ttarget, "**met**" if good else "**missed**"))
                    (met if good else missed).append("%s: %s (target ≥%d× faster)" % (
                        label, "%.2f× faster" % r if r >= 1 else "%.2f× slower" % (1 / r), ttarget))
                if abs_target:
                    good = c["wall"] < abs_target
                    tgt.append("<%d ms: %s" % (abs_target * 1000, "**met**" if good else "**missed**"))
                    (met if good else missed).append("%s: %.0f ms (target <%d ms)" % (label, c["wall"] * 1000, abs_target * 1000))
                good = rr <= 1.0
                tgt.append("RSS ≤ peers: %s" % ("**met**" if good else "**missed**"))
                (met if good else missed).append("%s: peak RSS %.2f× %s (target ≤1×)" % (label, rr, low))
            elif not ok(c):
                tgt.append("**missed** (cairn FAILED)")
                missed.append("%s: cairn FAILED" % label)
            cmp_s, tgt_s = "; ".join(cmp), "; ".join(tgt)
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (label if t == "cairn" else "", t, wall, cpu, rss, size_s, cmp_s, tgt_s))

data = [int(x) for x in env.get("data", "0 0 0").split()]
caches = [int(x) for x in env.get("caches", "0 0").split()]
print("Measured %s on %s CPUs (%s), %s RAM, %s (kernel %s); load average at the end %s." % (
    env.get("date", "?"), env.get("nproc", "?"), env.get("cpu", "?"), env.get("ram", "?"), env.get("fs", "?"),
    env.get("kernel", "?"), env.get("load", "?")))
print("Tools: %s; %s; %s." % (env.get("cairn", "?"), env.get("restic", "?"), env.get("borg", "?")))
print("Data (%s); final sizes %.1f / %.1f / %.1f MB." % (env.get("scale", "?"), *(d / 1e6 for d in data)))
print()
print("\n".join(lines))
print()
print("Wall time is the sum over the steps' commands; for the version series the mean per version follows in "
      "parentheses. Peak RSS is the largest of the step's commands. \"repo MiB\" is `du -sb` of the repository "
      "after the step; restic's and borg's local caches (%.1f and %.1f MiB at the end) are outside it, cairn has none."
      % (caches[0] / 2**20, caches[1] / 2**20) if len(caches) == 2 else "")
print()
print("Targets met: %d of %d." % (len(met), len(met) + len(missed)))
if missed:
    print()
    print("Missed:")
    for m in missed:
        print("- " + m)
if failures:
    print()
    print("**%d step(s) FAILED** (exit code or restore verification); see the table." % failures)
sys.exit(1 if failures else 0)
