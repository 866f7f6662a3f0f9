#!/usr/bin/env bash
# Times three snapshots of a generated tree with the release `cairn` binary:
# the first one, a second one with nothing changed, and a third after
# editing 1% of the files (a line inserted in the middle). After each it
# reports wall time, user/system CPU, peak RSS and the repository's size
# (pack bytes, the catalog's allocated bytes, the whole repository's disk
# usage), then the second/first wall-time ratio and the growth in percent.
#
#   bash benches/snapshot_ratio.sh
#
# Knobs (environment): FILES (10000), TOTAL_MIB (40), SEED (42), KEEP=1 to
# keep the work directory. The tree is the same for the same knobs on every
# machine (Python's seeded Mersenne Twister). Files are read with a warm page
# cache (they were just written); the repository's writes are synced as in
# real use. Wall time is measured around the command with bash's
# EPOCHREALTIME (ms resolution); CPU and peak RSS come from /usr/bin/time.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

FILES=${FILES:-10000}
TOTAL_MIB=${TOTAL_MIB:-40}
SEED=${SEED:-42}

if [ ! -x /usr/bin/time ]; then
    echo "installing GNU time (/usr/bin/time)..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >&2
fi

echo "building release binary..." >&2
cargo build --release --quiet --bin cairn
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$(pwd)/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/cairn"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-ratio.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "work directory: $WORK" >&2
else
    trap 'rm -rf "$WORK"' EXIT
fi
SRC="$WORK/src"
REPO="$WORK/repo"

# gen: writes the tree and a manifest of its files in generation order.
# edit N: inserts a line in the middle of every 100th file of the manifest.
cat >"$WORK/tree.py" <<'PY'
import os, random, sys

def generate(src, files, total, seed):
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 10)))
             for _ in range(400)]
    kw = ["let", "fn", "if", "else", "match", "return", "for", "pub", "struct", "impl", "use", "mut"]
    def word():
        return words[int(rng.random() ** 3 * len(words))]
    pool = []
    for _ in range(20000):
        depth = " " * (4 * rng.randint(0, 4))
        k = rng.randrange(6)
        if k == 0:
            pool.append(depth + "}\n")
        elif k == 1:
            pool.append(f"{depth}pub fn {word()}({word()}: u64) -> Result<()> {{\n")
        elif k == 2:
            pool.append(f"{depth}// {' '.join(word() for _ in range(rng.randint(3, 10)))}\n")
        elif k == 3:
            pool.append(f"{depth}{rng.choice(kw)} {word()}.{word()}({word()}, {rng.randrange(65536)});\n")
        else:
            pool.append(f"{depth}let {word()} = {word()}::{word()}(&{word()});\n")
    # Same size bands as benches/common/mod.rs, scaled to the total.
    raw = []
    for _ in range(files):
        b = rng.randrange(100)
        lo, hi = (512, 8192) if b < 60 else (8192, 65536) if b < 90 else \
                 (65536, 262144) if b < 99 else (1 << 20, 4 << 20)
        raw.append(lo * (hi / lo) ** rng.random())
    scale = total / sum(raw)
    paths = []
    for i, r in enumerate(raw):
        size = max(1, round(r * scale))
        d = os.path.join(src, f"d{i // 100:02}", f"s{(i // 10) % 10}")
        os.makedirs(d, exist_ok=True)
        if rng.randrange(5) == 0:
            path, data = os.path.join(d, f"f{i:05}.bin"), rng.randbytes(size)
        else:
            text, n = [], 0
            while n < size:
                chunk = rng.choices(pool, k=64)
                text.extend(chunk)
                n += sum(map(len, chunk))
            path, data = os.path.join(d, f"f{i:05}.rs"), "".join(text).encode()[:size]
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths

def edit(paths, round_):
    for path in paths[::100]:
        with open(path, "rb") as f:
            data = f.read()
        mid = len(data) // 2
        with open(path, "wb") as f:
            f.write(data[:mid] + f"\n// edited in round {round_}\n".encode() + data[mid:])
    return len(paths[::100])

cmd, work = sys.argv[1], sys.argv[2]
manifest = os.path.join(work, "manifest")
if cmd == "gen":
    paths = generate(os.path.join(work, "src"), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    with open(manifest, "w") as f:
        f.write("\n".join(paths) + "\n")
    print(f"{len(paths)} {sum(os.path.getsize(p) for p in paths)}")
else:
    with open(manifest) as f:
        print(edit(f.read().split(), int(sys.argv[3])))
PY

echo "generating $FILES files, ~$TOTAL_MIB MiB, seed $SEED..." >&2
GENERATED=$(python3 "$WORK/tree.py" gen "$WORK" "$FILES" "$((TOTAL_MIB << 20))" "$SEED")
read -r NFILES NBYTES <<<"$GENERATED"
"$BIN" --repo "$REPO" -q init
sync

# Sizes: pack bytes (file lengths under objects/), the catalog's allocated
# bytes (redb grows its file sparsely, so its length overstates it), and the
# whole repository's disk usage.
pack_bytes() { find "$REPO/objects" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
catalog_bytes() { du -B1 "$REPO/catalog.redb" | cut -f1; }
repo_bytes() { du -sB1 "$REPO" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

ROW='%-10s %7s %7s %6s %5s %8s %9s %11s %9s\n'
declare -A WALL SIZE PACKS
run_step() { # name
    sync
    local t0 t1
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.$1" "$BIN" --repo "$REPO" -q snapshot "$SRC"
    t1=$EPOCHREALTIME
    local e user sys rss
    read -r e user sys rss <"$WORK/time.$1"
    WALL[$1]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    SIZE[$1]=$(repo_bytes)
    PACKS[$1]=$(pack_bytes)
    # shellcheck disable=SC2059
    printf "$ROW" "$1" "${WALL[$1]}" "$user" "$sys" \
        "$(awk -v u="$user" -v s="$sys" -v w="${WALL[$1]}" 'BEGIN { printf "%.0f%%", 100 * (u + s) / w }')" \
        "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$(mib "${PACKS[$1]}")" "$(mib "$(catalog_bytes)")" "$(mib "${SIZE[$1]}")"
}

echo "cairn $("$BIN" --version | awk '{print $2}') on $(nproc) cores: $NFILES files, $(mib "$NBYTES") MiB, seed $SEED"
# shellcheck disable=SC2059
printf "$ROW" step wall_s user_s sys_s cpu rss_MiB packs_MiB catalog_MiB repo_MiB
run_step first
run_step no-change
EDITED=$(python3 "$WORK/tree.py" edit "$WORK" 1)
run_step edit-1pct
echo
growth() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f%% (%+d bytes)", 100 * (b - a) / a, b - a }'; }
awk -v f="${WALL[first]}" -v s="${WALL[no-change]}" \
    'BEGIN { printf "wall time ratio no-change/first: %.3f (%.1fx faster)\n", s / f, f / s }'
echo "after first: packs $(mib "${PACKS[first]}") MiB = $(awk -v r="${PACKS[first]}" -v t="$NBYTES" 'BEGIN { printf "%.1f", 100 * r / t }')% of the source; repository $(mib "${SIZE[first]}") MiB on disk"
echo "growth, no-change snapshot: repository $(growth "${SIZE[first]}" "${SIZE[no-change]}"), packs $(growth "${PACKS[first]}" "${PACKS[no-change]}")"
echo "growth, $EDITED files (1%) edited: repository $(growth "${SIZE[no-change]}" "${SIZE[edit-1pct]}"), packs $(growth "${PACKS[no-change]}" "${PACKS[edit-1pct]}")"
