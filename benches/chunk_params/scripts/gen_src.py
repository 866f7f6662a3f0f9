#!/usr/bin/env python3
"""Generate a seeded source-tree snapshot series: v00/ .. v09/ (directories).

v00: ~5,000 code-like text files, log-normal sizes (median ~5 KB, mean ~12 KB,
total ~60 MB), 60% of them start with the same license header.
Each later version edits ~2% of files (1-3 edits each: insert 1-8 lines,
delete 1-5 lines or rewrite 1-4 lines, at positions in the middle 10-90% of
the file), adds ~0.2% new files and deletes ~0.1%. Unchanged files are
hard links to the previous version (saves disk; contents identical).
"""
import math, os, random, shutil, sys, time

SEED = 7331
out = sys.argv[1] if len(sys.argv) > 1 else "data/src"
NFILES = int(os.environ.get("SRC_FILES", "5000"))
NVER = 10
rng = random.Random(SEED)

syll = ["get", "set", "buf", "len", "idx", "node", "tree", "map", "key", "val", "err", "ctx", "req", "res",
        "item", "list", "parse", "read", "write", "open", "close", "chunk", "hash", "store", "index", "pack",
        "load", "save", "init", "next", "prev", "size", "count", "path", "name", "data", "meta", "cache", "lock"]
idents = sorted({"_".join(rng.choice(syll) for _ in range(rng.randint(1, 3))) for _ in range(3000)})
rng.shuffle(idents)
icum, acc = [], 0.0
for i in range(len(idents)):
    acc += 1.0 / (i + 1) ** 0.9
    icum.append(acc)
types = ["u8", "u32", "u64", "usize", "i64", "bool", "String", "&str", "Vec<u8>", "Option<u64>", "Result<()>",
         "HashMap<String, u64>", "Box<dyn Error>", "PathBuf", "Chunk", "Index", "Store", "Snapshot", "Blob", "Hash"]
eng = ("the a of to in is that for it with as on be by this are from or at which an not can we when if "
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
    return r.choices(idents, cum_weights=icum, k=1)[0]

def camel(r):
    return "".join(p.capitalize() for p in ident(r).split("_"))

def stmt(r):
    k = r.random()
    if k < 0.22:
        return "let %s = %s.%s(%s, %d)?;" % (ident(r), ident(r), ident(r), ident(r), r.randint(0, 4096))
    if k < 0.36:
        return "%s.%s(&%s);" % (ident(r), ident(r), ident(r))
    if k < 0.46:
        return "// " + " ".join(r.choices(eng, k=r.randint(4, 12)))
    if k < 0.54:
        return 'log::debug!("%s {} {}", %s, %s);' % (" ".join(r.choices(eng, k=r.randint(2, 6))), ident(r), ident(r))
    if k < 0.62:
        return "let mut %s: %s = %s::new();" % (ident(r), r.choice(types), camel(r))
    if k < 0.70:
        return "%s += %s.len() as %s;" % (ident(r), ident(r), r.choice(types[:5]))
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
            blk.append("/// " + " ".join(r.choices(eng, k=r.randint(5, 14))))
            blk.append("#[derive(Debug, Clone)]")
            blk.append("pub struct %s {" % camel(r))
            for _ in range(r.randint(1, 6)):
                blk.append("    pub %s: %s," % (ident(r), r.choice(types)))
            blk.append("}")
            blk.append("")
        else:
            blk.append("/// " + " ".join(r.choices(eng, k=r.randint(5, 14))))
            blk.append("pub fn %s(%s: %s, %s: %s) -> %s {" % (ident(r), ident(r), r.choice(types), ident(r), r.choice(types), r.choice(types)))
            depth = 1
            for _ in range(r.randint(3, 25)):
                if r.random() < 0.12 and depth < 4:
                    blk.append("    " * depth + "if %s %s %s {" % (ident(r), r.choice(["==", "!=", "<", ">="]), r.choice([ident(r), str(r.randint(0, 999))])))
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
        for l in blk:
            lines.append(l + "\n")
            size += len(l) + 1
    return lines

def new_file(r):
    size = int(min(1_000_000, max(120, math.exp(r.gauss(math.log(5000), 1.32)))))
    lines = gen_lines(r, size)
    if r.random() < 0.6:
        lines.insert(0, LICENSE)
    return "".join(lines)

def new_path(r, n):
    return "src/mod%02d/sub%02d/%s_%05d.rs" % (r.randrange(40), r.randrange(12), ident(r)[:20], n)

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

def write(root, rel, text):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if os.path.exists(p):
        os.remove(p)  # break the hard link before writing new contents
    with open(p, "w") as f:
        f.write(text)

t0 = time.time()
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
files, counter = {}, 0
root = os.path.join(out, "v00")
for _ in range(NFILES):
    rel = new_path(rng, counter); counter += 1
    files[rel] = new_file(rng)
    write(root, rel, files[rel])
print("v00: %d files, %.1f MB, %.1fs" % (len(files), sum(map(len, files.values())) / 1e6, time.time() - t0), flush=True)
for v in range(1, NVER):
    prev, root = root, os.path.join(out, "v%02d" % v)
    names = sorted(files)
    dels = rng.sample(names, max(1, len(names) // 1000))
    edits = rng.sample([n for n in names if n not in dels], max(1, len(names) // 50))
    for n in dels:
        del files[n]
    changed = set(edits)
    for n in edits:
        files[n] = edit(rng, files[n])
    for _ in range(max(1, len(names) // 500)):
        rel = new_path(rng, counter); counter += 1
        files[rel] = new_file(rng)
        changed.add(rel)
    for rel, text in files.items():
        if rel in changed:
            write(root, rel, text)
        else:
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.link(os.path.join(prev, rel), p)
    print("v%02d: edited %d, added %d, deleted %d, %d files, %.1f MB" % (v, len(edits), len(changed) - len(edits), len(dels), len(files), sum(map(len, files.values())) / 1e6), flush=True)
print("source series done in %.1fs" % (time.time() - t0))
