#!/usr/bin/env python3
"""Seeded, deterministic data for benches/compare/run.sh (no internet).

    gen.py src-init DIR          code-like source tree + a few binary assets
    gen.py src-step DIR V        version V (1..): edit ~3% of the files in the
                                 middle or at the end, add/delete/rename a few
                                 files, rename one directory, delete one,
                                 replace a binary asset every third version
    gen.py sqlite-init FILE      SQLite database of SQLITE_MB (default 300) MB
    gen.py sqlite-step FILE V    UPDATE ~1% of the rows in place, a few
                                 INSERTs and DELETEs (never VACUUM)
    gen.py small-init DIR        SMALL_FILES (default 100000) small files,
                                 200 B - 6 KB, in nested directories

Every step seeds its own generator from a constant and V and reads the
current state from disk, so the same sequence of commands gives the same
bytes on every machine (Python's Mersenne Twister is stable across versions).
Sizes: SRC_FILES (default 4500), SQLITE_MB, SMALL_FILES.
"""
import math
import os
import random
import shutil
import sqlite3
import sys
import time

SRC_SEED, SQL_SEED, SMALL_SEED = 7331, 20240601, 4242

# ---------------------------------------------------------------- source tree
_vocab = random.Random(SRC_SEED)
SYLL = ["get", "set", "buf", "len", "idx", "node", "tree", "map", "key", "val", "err", "ctx", "req", "res",
        "item", "list", "parse", "read", "write", "open", "close", "chunk", "hash", "store", "index", "pack",
        "load", "save", "init", "next", "prev", "size", "count", "path", "name", "data", "meta", "cache", "lock"]
IDENTS = sorted({"_".join(_vocab.choice(SYLL) for _ in range(_vocab.randint(1, 3))) for _ in range(3000)})
_vocab.shuffle(IDENTS)
ICUM, _acc = [], 0.0
for _i in range(len(IDENTS)):
    _acc += 1.0 / (_i + 1) ** 0.9
    ICUM.append(_acc)
TYPES = ["u8", "u32", "u64", "usize", "i64", "bool", "String", "&str", "Vec<u8>", "Option<u64>", "Result<()>",
         "HashMap<String, u64>", "Box<dyn Error>", "PathBuf", "Chunk", "Index", "Store", "Snapshot", "Blob", "Hash"]
ENG = ("the a of to in is that for it with as on be by this are from or at which an not can we when if "
       "returns value error file chunk index store data buffer length offset used must should may will "
       "note see above below safety caller ensure because otherwise each every first last next").split()
LICENSE = ("// Copyright (c) 2019-2024 The Example Project Authors. All rights reserved.\n"
           "//\n// Licensed under the Apache License, Version 2.0 (the \"License\");\n"
           "// you may not use this file except in compliance with the License.\n"
           "// You may obtain a copy of the License at\n//\n//     http://www.apache.org/licenses/LICENSE-2.0\n//\n"
           "// Unless required by applicable law or agreed to in writing, software\n"
           "// distributed under the License is distributed on an \"AS IS\" BASIS,\n"
           "// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.\n"
           "// See the License for the specific language governing permissions and\n"
           "// limitations under the License.\n\n")


def ident(r):
    return r.choices(IDENTS, cum_weights=ICUM, k=1)[0]


def camel(r):
    return "".join(p.capitalize() for p in ident(r).split("_"))


def stmt(r):
    k = r.random()
    if k < 0.22:
        return "let %s = %s.%s(%s, %d)?;" % (ident(r), ident(r), ident(r), ident(r), r.randint(0, 4096))
    if k < 0.36:
        return "%s.%s(&%s);" % (ident(r), ident(r), ident(r))
    if k < 0.46:
        return "// " + " ".join(r.choices(ENG, k=r.randint(4, 12)))
    if k < 0.54:
        return 'log::debug!("%s {} {}", %s, %s);' % (" ".join(r.choices(ENG, k=r.randint(2, 6))), ident(r), ident(r))
    if k < 0.62:
        return "let mut %s: %s = %s::new();" % (ident(r), r.choice(TYPES), camel(r))
    if k < 0.70:
        return "%s += %s.len() as %s;" % (ident(r), ident(r), r.choice(TYPES[:5]))
    if k < 0.78:
        return "return Err(Error::%s(%s));" % (camel(r), ident(r))
    if k < 0.86:
        return "assert_eq!(%s.%s(), %d);" % (ident(r), ident(r), r.randint(0, 1 << 20))
    return "%s = %s.%s().unwrap_or(%s);" % (ident(r), ident(r), ident(r), ident(r))


def gen_lines(r, nbytes):
    lines, size = [], 0
    while size < nbytes:
        k = r.random()
        blk = []
        if k < 0.12:
            blk.append("use crate::%s::{%s, %s};" % (ident(r), camel(r), camel(r)))
        elif k < 0.2:
            blk.append("/// " + " ".join(r.choices(ENG, k=r.randint(5, 14))))
            blk.append("#[derive(Debug, Clone)]")
            blk.append("pub struct %s {" % camel(r))
            for _ in range(r.randint(1, 6)):
                blk.append("    pub %s: %s," % (ident(r), r.choice(TYPES)))
            blk.append("}")
            blk.append("")
        else:
            blk.append("/// " + " ".join(r.choices(ENG, k=r.randint(5, 14))))
            blk.append("pub fn %s(%s: %s, %s: %s) -> %s {" % (ident(r), ident(r), r.choice(TYPES), ident(r),
                                                            r.choice(TYPES), r.choice(TYPES)))
            depth = 1
            for _ in range(r.randint(3, 25)):
                if r.random() < 0.12 and depth < 4:
                    blk.append("    " * depth + "if %s %s %s {" % (ident(r), r.choice(["==", "!=", "<", ">="]),
                                                                 r.choice([ident(r), str(r.randint(0, 999))])))
                    depth += 1
                elif r.random() < 0.1 and depth > 1:
                    depth -= 1
                    blk.append("    " * depth + "}")
                else:
                    blk.append("    " * depth + stmt(r))
            while depth > 0:
                depth -= 1
                blk.append("    " * depth + "}")
            blk.append("")
        for line in blk:
            lines.append(line + "\n")
            size += len(line) + 1
    return lines


def new_file(r):
    size = int(min(1_000_000, max(120, math.exp(r.gauss(math.log(5000), 1.32)))))
    lines = gen_lines(r, size)
    if r.random() < 0.6:
        lines.insert(0, LICENSE)
    return "".join(lines)


def new_path(r, n):
    return "src/mod%02d/sub%02d/%s_%06d.rs" % (r.randrange(40), r.randrange(12), ident(r)[:20], n)


def edit(r, text):
    lines = text.splitlines(keepends=True)
    for _ in range(r.randint(1, 3)):
        n = len(lines)
        if n < 4:
            lines += gen_lines(r, 200)
            continue
        pos = r.randint(n // 10, max(n // 10, (9 * n) // 10))
        op = r.random()
        if op < 0.4:
            lines[pos:pos] = gen_lines(r, r.randint(40, 320))[: r.randint(1, 8)]
        elif op < 0.7:
            del lines[pos:pos + r.randint(1, 5)]
        else:
            k = r.randint(1, 4)
            lines[pos:pos + k] = ["    " + stmt(r) + "\n" for _ in range(k)]
    return "".join(lines)


def write(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def walk(root, sub):
    out = []
    for d, dirs, names in os.walk(os.path.join(root, sub)):
        dirs.sort()
        for n in sorted(names):
            out.append(os.path.relpath(os.path.join(d, n), root))
    return out


def src_init(root):
    nfiles = int(os.environ.get("SRC_FILES", "4500"))
    r = random.Random(SRC_SEED)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    total = 0
    for i in range(nfiles):
        text = new_file(r)
        total += len(text)
        write(root, new_path(r, i), text)
    # Binary assets (incompressible, like images and archives).
    for i in range(6):
        data = r.randbytes(r.randint(300_000, 1_500_000))
        total += len(data)
        write(root, "assets/img%02d.png" % i, data)
    write(root, "README.md", "".join(gen_lines(r, 3000)))
    print("src v00: %d files, %.1f MB" % (nfiles + 7, total / 1e6), flush=True)


def src_step(root, v):
    r = random.Random(SRC_SEED * 1000 + v)
    files = walk(root, "src")
    n = len(files)
    edits = r.sample(files, max(1, n * 3 // 100))
    appended = 0
    for rel in edits:
        p = os.path.join(root, rel)
        with open(p) as f:
            text = f.read()
        if r.random() < 0.3:
            text += "".join(gen_lines(r, r.randint(60, 600)))
            appended += 1
        else:
            text = edit(r, text)
        write(root, rel, text)
    rest = sorted(set(files) - set(edits))
    dels = r.sample(rest, max(1, n // 500))
    for rel in dels:
        os.remove(os.path.join(root, rel))
    rest = sorted(set(rest) - set(dels))
    moved = r.sample(rest, max(1, n // 1000))
    for i, rel in enumerate(moved):
        dst = "src/moved_v%02d/%s" % (v, os.path.basename(rel))
        os.makedirs(os.path.dirname(os.path.join(root, dst)), exist_ok=True)
        os.rename(os.path.join(root, rel), os.path.join(root, dst))
    adds = max(1, n // 500)
    for i in range(adds):
        rel = new_path(r, v * 100_000 + i)
        if i % 3 == 0:
            rel = "src/feature_v%02d/%s" % (v, os.path.basename(rel))
        write(root, rel, new_file(r))
    dirs = sorted({os.path.dirname(f) for f in walk(root, "src")})
    ren = r.choice(dirs)
    os.rename(os.path.join(root, ren), os.path.join(root, ren + "_r%02d" % v))
    gone = r.choice([d for d in dirs if d != ren])
    shutil.rmtree(os.path.join(root, gone))
    if v % 3 == 0:
        write(root, "assets/img%02d.png" % (v % 6), r.randbytes(r.randint(300_000, 1_500_000)))
    print("src v%02d: edited %d (%d appended), deleted %d, moved %d, added %d, renamed dir %s, removed dir %s"
          % (v, len(edits), appended, len(dels), len(moved), adds, ren, gone), flush=True)


# ---------------------------------------------------------------- SQLite
_svocab = random.Random(SQL_SEED)
_S = ["ka", "lo", "ri", "en", "ta", "mi", "so", "ur", "be", "an", "de", "ph", "th", "st", "qu", "or", "el", "is", "on", "ve"]
WORDS = sorted({"".join(_svocab.choice(_S) for _ in range(_svocab.randint(1, 4))) for _ in range(6000)})
_svocab.shuffle(WORDS)
WCUM, _acc = [], 0.0
for _i in range(len(WORDS)):
    _acc += 1.0 / (_i + 1) ** 1.05
    WCUM.append(_acc)
FIRST = ["Anna", "Ben", "Carla", "Dmitri", "Eve", "Farid", "Gita", "Hugo", "Ines", "Jon", "Kenji", "Lena", "Mateo",
         "Nora", "Omar", "Pia"]
LAST = ["Smith", "Novak", "Garcia", "Kowalski", "Tanaka", "Okafor", "Muller", "Rossi", "Silva", "Jensen", "Dubois",
        "Ivanova", "Khan", "Moreau"]
DOMAINS = ["example.com", "mail.test", "corp.example", "inbox.example.org", "uni.example.edu"]
STATUS = ["new", "open", "paid", "shipped", "returned", "closed"]
T0 = 1_600_000_000


def note(r):
    n = r.randint(8, 30)
    ws = r.choices(WORDS, cum_weights=WCUM, k=n)
    if r.random() < 0.5:
        ws.insert(r.randrange(n), "#%d" % r.randint(0, 10**6))
    s = " ".join(ws)
    return s[:1].upper() + s[1:] + "."


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def row(r, i):
    f, l = r.choice(FIRST), r.choice(LAST)
    created = T0 + i * 37 + r.randint(0, 30)
    return (i, created, iso(created), "%s %s" % (f, l), "%s.%s%d@%s" % (f.lower(), l.lower(), i % 9973, r.choice(DOMAINS)),
            r.choice(STATUS), round(r.random() * 5000, 2), r.randint(1, 50), note(r))


def sql_open(path):
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA synchronous=OFF")
    return con


def sqlite_init(path):
    target = float(os.environ.get("SQLITE_MB", "300")) * 1e6
    r = random.Random(SQL_SEED)
    if os.path.exists(path):
        os.remove(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    con = sql_open(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, created INTEGER, updated TEXT, customer TEXT, "
                "email TEXT, status TEXT, amount REAL, qty INTEGER, note TEXT)")
    con.execute("CREATE INDEX orders_email ON orders(email)")
    i, batch = 1, 10000
    while True:
        con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?)", [row(r, j) for j in range(i, i + batch)])
        con.commit()
        i += batch
        size = os.path.getsize(path)
        if size >= target:
            break
        # Last batches sized to land close to the target.
        batch = max(1000, min(10000, int((target - size) / (size / (i - 1)))))
    con.close()
    print("sqlite v00: %d rows, %.1f MB" % (i - 1, os.path.getsize(path) / 1e6), flush=True)


def sqlite_step(path, v):
    r = random.Random(SQL_SEED * 1000 + v)
    con = sql_open(path)
    ids = [x for (x,) in con.execute("SELECT id FROM orders ORDER BY id")]
    now = T0 + 400_000_000 + v * 86400
    upd = r.sample(ids, max(1, len(ids) // 100))
    for i in upd:
        if r.random() < 0.7:
            con.execute("UPDATE orders SET updated=?, status=?, amount=? WHERE id=?",
                        (iso(now + r.randint(0, 86399)), r.choice(STATUS), round(r.random() * 5000, 2), i))
        else:
            con.execute("UPDATE orders SET updated=?, note=?, qty=? WHERE id=?",
                        (iso(now + r.randint(0, 86399)), note(r), r.randint(1, 50), i))
    dels = r.sample(ids, max(1, len(ids) // 5000))
    con.executemany("DELETE FROM orders WHERE id=?", [(i,) for i in dels])
    top = ids[-1]
    nins = max(1, len(ids) // 2000)
    con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?)", [row(r, j) for j in range(top + 1, top + 1 + nins)])
    con.commit()
    con.close()
    print("sqlite v%02d: updated %d, deleted %d, inserted %d, %.1f MB"
          % (v, len(upd), len(dels), nins, os.path.getsize(path) / 1e6), flush=True)


# ---------------------------------------------------------------- small files
def small_init(root):
    nfiles = int(os.environ.get("SMALL_FILES", "100000"))
    r = random.Random(SMALL_SEED)
    shutil.rmtree(root, ignore_errors=True)
    pool = []
    for _ in range(4000):
        k = r.random()
        if k < 0.3:
            pool.append("%s = %s\n" % (ident(r), r.choice([str(r.randint(0, 99999)), '"%s"' % ident(r), "true", "false"])))
        elif k < 0.6:
            pool.append('{"%s": %d, "%s": "%s"},\n' % (ident(r), r.randint(0, 10**6), ident(r), " ".join(r.choices(ENG, k=4))))
        else:
            pool.append("%s INFO %s: %s\n" % (iso(T0 + r.randint(0, 10**8)), ident(r), " ".join(r.choices(ENG, k=r.randint(4, 12)))))
    per_dir, made, total = 100, 0, 0
    d = 0
    while made < nfiles:
        dpath = os.path.join(root, "d%03d" % (d // 10), "e%02d" % (d % 10))
        os.makedirs(dpath)
        for j in range(min(per_dir, nfiles - made)):
            size = int(min(6000, max(200, math.exp(r.gauss(math.log(1200), 0.8)))))
            if r.random() < 0.05:
                data = r.randbytes(size)
            else:
                start = r.randrange(len(pool))
                parts, n = [], 0
                while n < size:
                    s = pool[(start + len(parts) * 7) % len(pool)] if r.random() < 0.7 else r.choice(pool)
                    parts.append(s)
                    n += len(s)
                data = "".join(parts)[:size].encode()
            with open(os.path.join(dpath, "f%03d.%s" % (j, r.choice(["txt", "json", "cfg", "log"]))), "wb") as f:
                f.write(data)
            total += len(data)
            made += 1
        d += 1
    print("small: %d files in %d directories, %.1f MB" % (made, d, total / 1e6), flush=True)


def main():
    cmd, target = sys.argv[1], sys.argv[2]
    v = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    {"src-init": lambda: src_init(target), "src-step": lambda: src_step(target, v),
     "sqlite-init": lambda: sqlite_init(target), "sqlite-step": lambda: sqlite_step(target, v),
     "small-init": lambda: small_init(target)}[cmd]()


if __name__ == "__main__":
    main()
