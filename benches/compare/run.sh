#!/usr/bin/env bash
# Side-by-side comparison of cairn with restic and borg (issue 5).
#
#   bash benches/compare/run.sh                 # full scale, prints the table
#   bash benches/compare/run.sh --update-docs   # ... and rewrites the marked
#                                               # section of docs/PERFORMANCE.md
#                                               # and benches/compare/results/
#   SCALE=small bash benches/compare/run.sh     # quick run (~3 min)
#
# Generates all data itself (benches/compare/gen.py, seeded): a ~60 MB source
# tree with 10 later versions, a 300 MB SQLite database with 10 later
# versions (~1% of rows updated in place each), and 100,000 small files. Each
# tool gets its own fresh repositories (one per data set) and runs the same
# steps on the same paths; each step runs for cairn, restic and borg one
# after the other before the next step starts, so machine noise hits all
# three alike. The page cache is warm for everyone: the data were just
# written (and read back for verification) and nothing drops the caches.
# Every command is measured with /usr/bin/time (user+sys CPU, peak RSS);
# wall time is taken around it with bash's EPOCHREALTIME.
#
# Settings: cairn defaults (zstd level 3, no encryption); restic 0.14+
# repository format 2 with `--compression auto` (zstd), password in the
# environment, cache in the work directory; borg `init -e none`,
# `--compression zstd,3`, cache and config in the work directory.
#
# Environment: SCALE=small|full (default full), CAIRN_COMPARE_DIR (work
# directory, default /tmp/cairn-compare; it is wiped at start), KEEP=1 keeps
# it afterwards. A step that fails is reported as FAILED and the script
# exits 1 at the end.
set -uo pipefail
export LC_ALL=C
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
UPDATE_DOCS=0
for a in "$@"; do
    case "$a" in
        --update-docs) UPDATE_DOCS=1 ;;
        -h | --help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
    esac
done

SCALE=${SCALE:-full}
case "$SCALE" in
    full) export SRC_FILES=${SRC_FILES:-4500} SQLITE_MB=${SQLITE_MB:-300} SMALL_FILES=${SMALL_FILES:-100000} ;;
    small) export SRC_FILES=${SRC_FILES:-400} SQLITE_MB=${SQLITE_MB:-20} SMALL_FILES=${SMALL_FILES:-5000} ;;
    *) echo "run.sh: SCALE must be small or full, not '$SCALE'" >&2; exit 2 ;;
esac
VERSIONS=${VERSIONS:-10}

# ------------------------------------------------------------------ tools
need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} from Debian..." >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2 ||
        { echo "run.sh: could not install ${need[*]}; install them and rerun" >&2; exit 1; }
fi
echo "building cairn (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin cairn) || { echo "run.sh: cargo build failed" >&2; exit 1; }
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
CAIRN="$TARGET_DIR/release/cairn"
if ! restic help init 2>/dev/null | grep -q -- --repository-version; then
    echo "run.sh: restic $(restic version | cut -d' ' -f2) has no compression (needs 0.14+)" >&2
    exit 1
fi

# ------------------------------------------------------------------ layout
WORK=${CAIRN_COMPARE_DIR:-/tmp/cairn-compare}
case "$WORK" in /*) ;; *) WORK="$(pwd)/$WORK" ;; esac
rm -rf "$WORK"
mkdir -p "$WORK"/{data,repos,restore,out,cache}
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$WORK"' EXIT; else echo "work directory: $WORK" >&2; fi
DATA="$WORK/data"
SRC="$DATA/src"
DB="$DATA/db"
SMALL="$DATA/small"
RES="$WORK/out/results.tsv"
SIZES="$WORK/out/sizes.tsv"
: >"$RES"
: >"$SIZES"
export RESTIC_PASSWORD=compare RESTIC_CACHE_DIR="$WORK/cache/restic"
export BORG_BASE_DIR="$WORK/cache/borg" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
    BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES
TOOLS=(cairn restic borg)
FAILED=0
log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }

repo() { echo "$WORK/repos/$1-$2"; } # tool dataset

# measure STEP TOOL CMD...: runs CMD (stdout/stderr to out/), appends a row
# "step tool rc wall cpu rss_kib" to results.tsv.
N=0
measure() {
    local step=$1 tool=$2
    shift 2
    N=$((N + 1))
    local tf="$WORK/out/time.$N" o="$WORK/out/$N.$tool.$step"
    local t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"$o.out" 2>"$o.err"
    local rc=$? t1=$EPOCHREALTIME
    local wall cpu rss
    wall=$(python3 -c "print('%.3f' % ($t1 - $t0))")
    read -r u s rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9]+$' "$tf" | tail -1)
    cpu=$(python3 -c "print('%.2f' % (${u:-0} + ${s:-0}))")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$tool" "$rc" "$wall" "$cpu" "${rss:-0}" >>"$RES"
    if [ $rc -ne 0 ]; then
        FAILED=1
        log "FAILED: $step $tool (exit $rc): $* -- see below"
        tail -5 "$o.err" >&2
    else
        log "$step $tool: ${wall}s wall, ${cpu}s CPU, $((${rss:-0} / 1024)) MiB"
    fi
    return $rc
}

size() { # KEY: du -sb of every tool's repository for the data set of KEY
    local key=$1 ds=$2 t
    for t in "${TOOLS[@]}"; do
        printf '%s\t%s\t%s\n' "$key" "$t" "$(du -sb "$(repo "$t" "$ds")" | cut -f1)" >>"$SIZES"
    done
}

# One snapshot of PATH into data set DS's repository, by TOOL, named NAME
# (borg archive name; cairn and restic number their own).
snap() {
    local step=$1 tool=$2 ds=$3 path=$4 name=$5 r
    r=$(repo "$tool" "$ds")
    case $tool in
        cairn) measure "$step" cairn "$CAIRN" --repo "$r" -q snapshot "$path" ;;
        restic) measure "$step" restic restic -r "$r" backup -q --compression auto "$path" ;;
        borg) measure "$step" borg borg create --compression zstd,3 "$r::$name" "$path" ;;
    esac
}

# ids TOOL DS: prints the first and the last snapshot id (cairn, restic) or
# archive name (borg), one per line.
ids() {
    local r
    r=$(repo "$1" "$2")
    case $1 in
        cairn) "$CAIRN" --repo "$r" list --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s[0]["id"]); print(s[-1]["id"])' ;;
        restic) restic -r "$r" snapshots --json | python3 -c 'import json,sys; s=sorted(json.load(sys.stdin), key=lambda x: x["time"]); print(s[0]["id"]); print(s[-1]["id"])' ;;
        borg) borg list --short "$r" | sed -n '1p;$p' ;;
    esac
}

diff_step() {
    local step=$1 tool=$2 ds=$3 r a b
    r=$(repo "$tool" "$ds")
    { read -r a; read -r b; } < <(ids "$tool" "$ds")
    case $tool in
        cairn) measure "$step" cairn "$CAIRN" --repo "$r" diff "$a" "$b" ;;
        restic) measure "$step" restic restic -r "$r" diff "$a" "$b" ;;
        borg) measure "$step" borg borg diff "$r::$a" "$b" ;;
    esac
}

# restore_step STEP TOOL DS LIVE: restores the latest snapshot and compares
# the restored copy of LIVE with LIVE byte for byte (not timed).
restore_step() {
    local step=$1 tool=$2 ds=$3 live=$4 r t last
    r=$(repo "$tool" "$ds")
    t="$WORK/restore/$tool-$ds"
    rm -rf "$t"
    mkdir -p "$t"
    case $tool in
        cairn) measure "$step" cairn "$CAIRN" --repo "$r" -q restore --target "$t" latest ;;
        restic) measure "$step" restic restic -r "$r" restore -q latest --target "$t" ;;
        borg)
            last=$(borg list --short --last 1 "$r")
            measure "$step" borg bash -c 'cd "$1" && borg extract "$2"' _ "$t" "$r::$last"
            ;;
    esac || return 1
    if ! diff -r --no-dereference -q "$live" "$t$live" >"$WORK/out/verify.$tool-$ds" 2>&1; then
        FAILED=1
        printf '%s\t%s\tverify\n' "$step" "$tool" >>"$WORK/out/verify_failed.tsv"
        log "VERIFY FAILED: $tool restore of $live differs:"
        head -5 "$WORK/out/verify.$tool-$ds" >&2
    else
        log "verified: $tool restored $live byte for byte"
    fi
    rm -rf "$t"
}

forget_step() {
    local step=$1 tool=$2 ds=$3 r
    r=$(repo "$tool" "$ds")
    case $tool in
        # One command each, as a user runs it (`forget --gc` = forget, then gc).
        cairn) measure "$step" cairn "$CAIRN" --repo "$r" -q forget --keep-last 3 --gc ;;
        restic) measure "$step" restic restic -r "$r" forget -q --keep-last 3 --prune ;;
        borg) measure "$step" borg bash -c 'borg prune --keep-last 3 "$1" && borg compact "$1"' _ "$r" ;;
    esac
}

check_step() {
    local step=$1 tool=$2 ds=$3 full=$4 r
    r=$(repo "$tool" "$ds")
    case $tool in
        cairn) measure "$step" cairn "$CAIRN" --repo "$r" -q check ${full:+--read-data} ;;
        restic) measure "$step" restic restic -r "$r" check -q ${full:+--read-data} ;;
        borg) measure "$step" borg borg check ${full:+--verify-data} "$r" ;;
    esac
}

# ------------------------------------------------------------------ data
log "generating data (SCALE=$SCALE) in $DATA"
python3 "$HERE/gen.py" src-init "$SRC" >&2 || exit 1
python3 "$HERE/gen.py" sqlite-init "$DB/app.db" >&2 || exit 1
python3 "$HERE/gen.py" small-init "$SMALL" >&2 || exit 1

log "creating repositories"
for ds in src db small; do
    "$CAIRN" --repo "$(repo cairn $ds)" -q init >/dev/null || exit 1
    restic -r "$(repo restic $ds)" init -q --repository-version 2 >/dev/null || exit 1
    borg init -e none "$(repo borg $ds)" || exit 1
done

# ------------------------------------------------------------------ steps
for t in "${TOOLS[@]}"; do snap first-src "$t" src "$SRC" v00; done
for t in "${TOOLS[@]}"; do snap first-db "$t" db "$DB" v00; done
for t in "${TOOLS[@]}"; do snap first-small "$t" small "$SMALL" v00; done
size first-src src
size first-db db
size first-small small

for v in $(seq 1 "$VERSIONS"); do
    vv=$(printf 'v%02d' "$v")
    python3 "$HERE/gen.py" src-step "$SRC" "$v" >&2 || exit 1
    for t in "${TOOLS[@]}"; do snap series-src "$t" src "$SRC" "$vv"; done
done
size series-src src
for v in $(seq 1 "$VERSIONS"); do
    vv=$(printf 'v%02d' "$v")
    python3 "$HERE/gen.py" sqlite-step "$DB/app.db" "$v" >&2 || exit 1
    for t in "${TOOLS[@]}"; do snap series-db "$t" db "$DB" "$vv"; done
done
size series-db db

for t in "${TOOLS[@]}"; do snap nochange-small "$t" small "$SMALL" v01; done
size nochange-small small

for t in "${TOOLS[@]}"; do diff_step diff-src "$t" src; done
for t in "${TOOLS[@]}"; do diff_step diff-small "$t" small; done

for t in "${TOOLS[@]}"; do restore_step restore-src "$t" src "$SRC"; done
for t in "${TOOLS[@]}"; do restore_step restore-db "$t" db "$DB"; done
for t in "${TOOLS[@]}"; do restore_step restore-small "$t" small "$SMALL"; done

for t in "${TOOLS[@]}"; do forget_step forget-src "$t" src; done
size forget-src src
for t in "${TOOLS[@]}"; do forget_step forget-db "$t" db; done
size forget-db db

for ds in src db small; do
    for t in "${TOOLS[@]}"; do check_step "check-$ds" "$t" "$ds" ""; done
done
for ds in src db small; do
    for t in "${TOOLS[@]}"; do check_step "readdata-$ds" "$t" "$ds" 1; done
done

# ------------------------------------------------------------------ report
{
    echo "date=$(date -u +%FT%TZ)"
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "ram=$(free -g | awk '/^Mem:/ {print $2}') GiB"
    echo "fs=$(df -T "$WORK" | awk 'NR==2 {print $2}')"
    echo "kernel=$(uname -r)"
    echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "cairn=$("$CAIRN" --version) ($(git -C "$ROOT" rev-parse --short HEAD))"
    echo "restic=$(restic version | cut -d' ' -f1-2)"
    echo "borg=$(borg --version)"
    echo "scale=$SCALE: source tree $SRC_FILES files + $VERSIONS versions, SQLite $SQLITE_MB MB + $VERSIONS versions, $SMALL_FILES small files"
    echo "data=$(du -sb "$SRC" | cut -f1) $(du -sb "$DB" | cut -f1) $(du -sb "$SMALL" | cut -f1)"
    echo "caches=$(du -sb "$WORK/cache/restic" | cut -f1) $(du -sb "$WORK/cache/borg" | cut -f1)"
} >"$WORK/out/env.txt"
[ -f "$WORK/out/verify_failed.tsv" ] || : >"$WORK/out/verify_failed.tsv"
python3 "$HERE/report.py" "$WORK/out" >"$WORK/out/table.md" || FAILED=1
cat "$WORK/out/table.md"

if [ $UPDATE_DOCS = 1 ]; then
    # The raw figures behind the docs table, so report.py can regenerate it.
    mkdir -p "$ROOT/benches/compare/results"
    cp "$WORK/out/table.md" "$WORK/out/results.tsv" "$WORK/out/sizes.tsv" "$WORK/out/env.txt" \
        "$WORK/out/verify_failed.tsv" "$ROOT/benches/compare/results/" || FAILED=1
    python3 - "$ROOT/docs/PERFORMANCE.md" "$WORK/out/table.md" <<'PY' || FAILED=1
import sys
doc, table = sys.argv[1], open(sys.argv[2]).read()
text = open(doc).read()
b, e = "<!-- compare:begin -->", "<!-- compare:end -->"
if b not in text or e not in text:
    sys.exit("run.sh: %s has no %s ... %s section" % (doc, b, e))
head, rest = text.split(b, 1)
_, tail = rest.split(e, 1)
open(doc, "w").write(head + b + "\n" + table.rstrip("\n") + "\n" + e + tail)
print("updated", doc, file=sys.stderr)
PY
fi
if [ $FAILED -ne 0 ]; then
    echo "run.sh: at least one step FAILED (see the table)" >&2
    exit 1
fi
