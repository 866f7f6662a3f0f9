#!/usr/bin/env bash
# Regenerate the data sets and rerun every measurement. Tables land in results/.
# Knobs: SQLITE_MB (default 300), SRC_FILES (default 5000), KEEP_DATA=1 to reuse data/.
set -euo pipefail
cd "$(dirname "$0")"
START=$(date +%s)
ALL=2/8/32,4/16/64,8/32/128,16/64/256,64/256/1024,256/1024/4096
BEST=2/8/32,4/16/64          # the two best by stored bytes in the dedup runs
LEVELS=1,3,6,9,12,19
LEVEL_SAMPLE_MB=100          # SQLite v00 level test uses every k-th unique chunk, <= this many MB

cargo build --release 2>&1 | tail -1
B=target/release/chunkmeasure
mkdir -p results
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"; echo "nproc: $(nproc)";
  rustc --version; python3 -c 'import sqlite3,sys; print("python", sys.version.split()[0], "sqlite", sqlite3.sqlite_version)';
  grep -A1 -E '^name = "(fastcdc|blake3|zstd|zstd-sys|rayon)"$' Cargo.lock | grep -v -- '--' | paste - - ; } > results/env.txt

if [[ "${KEEP_DATA:-0}" != 1 || ! -d data/sqlite || ! -d data/src ]]; then
  rm -rf data && mkdir -p data
  echo "== generating SQLite series";      python3 scripts/gen_sqlite.py data/sqlite
  echo "== generating source-tree series"; python3 scripts/gen_src.py data/src
fi

echo "== dedup: sqlite";      $B dedup sqlite data/sqlite           > results/dedup_sqlite.md 2> results/dedup_sqlite.log
echo "== dedup: source tree"; $B dedup source-tree data/src         > results/dedup_src.md    2> results/dedup_src.log
echo "== sqlite page diff";   python3 scripts/pagediff.py data/sqlite > results/pagediff_sqlite.md
echo "== zstd levels: sqlite v00";      $B levels sqlite data/sqlite $BEST $LEVELS $LEVEL_SAMPLE_MB > results/levels_sqlite.md 2> results/levels_sqlite.log
echo "== zstd levels: source tree v00"; $B levels source-tree data/src $BEST $LEVELS             > results/levels_src.md    2> results/levels_src.log
echo "== small files: source tree v00"; $B smallfiles data/src/v00 $ALL                            > results/smallfiles_src.md
cat results/dedup_sqlite.md results/pagediff_sqlite.md results/dedup_src.md \
    results/levels_sqlite.md results/levels_src.md results/smallfiles_src.md > results/tables.md
echo "== done in $(( $(date +%s) - START ))s; tables in results/tables.md"
