#!/usr/bin/env bash
# Repository size, snapshot time and restore time of grouped frames
# (docs/PERFORMANCE.md, "Grouped frames") on three data sets:
#   small  100,000 text files of 200-4,000 bytes (50 x 20 dirs x 100 files)
#   src    a copy of ~/.cargo/registry/src (real source code)
#   bin    100 MB from /dev/urandom
# Usage: bash benches/grouped_frames.sh [OLD_CAIRN]
#   OLD_CAIRN: a cairn binary to compare with (e.g. one built from the commit
#   before grouped frames); the current release build is always measured.
# Needs python3, GNU time (/usr/bin/time), ~2 GB in $WORK (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
NEW=$PWD/target/release/cairn
OLD=${1:-}
WORK=${WORK:-/tmp}/cairn-grouped-frames
mkdir -p "$WORK"
cd "$WORK"
if [ ! -d small ]; then
  python3 - <<'PY'
import os, random
random.seed(42)
path = '/usr/share/dict/words'
if os.path.exists(path):
    words = open(path).read().split()
else:
    rnd = random.Random(7)
    words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz')
                     for _ in range(rnd.randint(2, 10))) for _ in range(20000)]
for a in range(50):
    for b in range(20):
        d = os.path.join('small', f'd{a}', f'e{b}')
        os.makedirs(d, exist_ok=True)
        for f in range(100):
            n = random.randint(200, 4000)
            out, size = [], 0
            while size < n:
                w = random.choice(words)
                out.append(w)
                size += len(w) + 1
            open(os.path.join(d, f'f{f}.txt'), 'w').write(' '.join(out)[:n])
PY
fi
[ -d src ] || { mkdir src && cp -r ~/.cargo/registry/src/*/* src/; }
[ -d bin ] || { mkdir bin && head -c 100000000 /dev/urandom > bin/data; }

run() { # BIN LABEL DATASET
  local repo=$WORK/repo-$2-$3 target=$WORK/restore-$2-$3
  rm -rf "$repo" "$target"
  "$1" --repo "$repo" init >/dev/null
  local snap rest
  snap=$( { /usr/bin/time -f "%e s %U user %M KB" "$1" --repo "$repo" snapshot -q "$WORK/$3" >/dev/null; } 2>&1 | tail -1)
  rest=$( { /usr/bin/time -f "%e s %U user %M KB" "$1" --repo "$repo" restore latest --target "$target" >/dev/null; } 2>&1 | tail -1)
  diff -rq "$WORK/$3" "$target$WORK/$3" >/dev/null || { echo "restore of $3 differs" >&2; exit 1; }
  printf '%-6s %-6s packs %11s B  catalog %9s B  snapshot %-26s restore %s\n' \
    "$2" "$3" "$(du -sb "$repo/objects" | cut -f1)" "$(stat -c %s "$repo/catalog.redb")" "[$snap]" "[$rest]"
  rm -rf "$target"
}
for d in small src bin; do
  [ -n "$OLD" ] && run "$OLD" old "$d"
  run "$NEW" new "$d"
done
