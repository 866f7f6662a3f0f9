#!/usr/bin/env python3
"""Reference floor for the SQLite series: how many 4 KiB pages change per version.

For each version: pages whose bytes differ from the same page number in the
previous version, and pages whose content was never seen in any earlier
version (what an ideal page-aligned 4 KiB fixed-size chunker would store).
"""
import glob, hashlib, os, sys

series = sys.argv[1] if len(sys.argv) > 1 else "data/sqlite"
PG = 4096
seen, prev = set(), None
rows = []
for path in sorted(glob.glob(os.path.join(series, "v[0-9][0-9].db"))):
    data = open(path, "rb").read()
    pages = [hashlib.blake2b(data[i:i + PG], digest_size=16).digest() for i in range(0, len(data), PG)]
    changed = len(pages) if prev is None else sum(1 for i, h in enumerate(pages) if i >= len(prev) or prev[i] != h)
    new = sum(1 for h in set(pages) if h not in seen)
    seen.update(pages)
    rows.append((os.path.basename(path), len(pages), changed, new))
    prev = pages
print("### SQLite: 4 KiB page-level change per version (reference floor, raw bytes)\n")
print("| version | pages | pages changed vs previous | % | never-seen pages | never-seen MB (raw) |")
print("|---|---:|---:|---:|---:|---:|")
for name, n, c, new in rows:
    print("| %s | %d | %d | %.1f%% | %d | %.1f |" % (name, n, c, 100.0 * c / n, new, new * PG / 1e6))
later = rows[1:]
print("\nMean over later versions: %.1f%% of pages changed, %.1f MB raw of never-seen pages per version.\n"
      % (sum(100.0 * c / n for _, n, c, _ in later) / len(later), sum(new * PG / 1e6 for *_, new in later) / len(later)))
