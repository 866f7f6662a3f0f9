#!/usr/bin/env python3
"""Generate a seeded SQLite snapshot series: v00.db .. v09.db.

v00 is the initial database; each later version UPDATEs ~1% of rows
(score + payload always, email for 1 in 5 of them, which touches the index),
INSERTs ~0.1% new rows and DELETEs ~0.05% rows, then the file is copied.
journal_mode=DELETE, default page size (4096), so each copy is self-contained.
"""
import os, random, shutil, sqlite3, sys, time

SEED = 20240601
out = sys.argv[1] if len(sys.argv) > 1 else "data/sqlite"
target_mb = float(os.environ.get("SQLITE_MB", "300"))
NVER = 10
os.makedirs(out, exist_ok=True)
rng = random.Random(SEED)

# Vocabulary with a Zipf-like distribution -> semi-compressible text (zstd ~2.5-3.5x)
syll = ["ka", "lo", "ri", "en", "ta", "mi", "so", "ur", "be", "an", "de", "ph", "th", "st", "qu", "or", "el", "is", "on", "ve"]
words = sorted({"".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(6000)})
rng.shuffle(words)
cum, acc = [], 0.0
for i in range(len(words)):
    acc += 1.0 / (i + 1) ** 1.05
    cum.append(acc)
first = ["Anna", "Ben", "Carla", "Dmitri", "Eve", "Farid", "Gita", "Hugo", "Ines", "Jon", "Kenji", "Lena", "Mateo", "Nora", "Omar", "Pia"]
last = ["Smith", "Novak", "Garcia", "Kowalski", "Tanaka", "Okafor", "Muller", "Rossi", "Silva", "Jensen", "Dubois", "Ivanova", "Khan", "Moreau"]
domains = ["example.com", "mail.test", "corp.example", "inbox.example.org", "uni.example.edu"]

def payload(r):
    n = r.randint(22, 38)
    ws = r.choices(words, cum_weights=cum, k=n)
    # sprinkle numbers / ids like real records
    if r.random() < 0.5:
        ws.insert(r.randrange(n), "#%d" % r.randint(0, 10**6))
    if r.random() < 0.3:
        ws.insert(r.randrange(n), "%04d-%02d-%02d" % (r.randint(2015, 2025), r.randint(1, 12), r.randint(1, 28)))
    s = " ".join(ws)
    return s[:1].upper() + s[1:] + "."

def person(r, i):
    f, l = r.choice(first), r.choice(last)
    return f + " " + l, "%s.%s%d@%s" % (f.lower(), l.lower(), i % 9973, r.choice(domains))

def row(r, i):
    name, email = person(r, i)
    return (i, name, email, round(r.random() * 1000, 3), payload(r))

t0 = time.time()
path = os.path.join(out, "work.db")
if os.path.exists(path):
    os.remove(path)
con = sqlite3.connect(path)
con.execute("PRAGMA journal_mode=DELETE")
con.execute("PRAGMA synchronous=OFF")
con.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL, payload TEXT)")
# measured: ~363 bytes of file per row (table + email index)
nrows = int(target_mb * 1e6 / 363)
B = 20000
for start in range(0, nrows, B):
    con.executemany("INSERT INTO people VALUES (?,?,?,?,?)", [row(rng, i) for i in range(start + 1, min(nrows, start + B) + 1)])
con.execute("CREATE INDEX people_email ON people(email)")
con.commit()
next_id = nrows + 1
ids = list(range(1, nrows + 1))
alive = set(ids)

def snapshot(v):
    con.commit()
    shutil.copyfile(path, os.path.join(out, "v%02d.db" % v))

snapshot(0)
print("v00: %d rows, %.1f MB, %.1fs" % (nrows, os.path.getsize(path) / 1e6, time.time() - t0), flush=True)
for v in range(1, NVER):
    live = len(ids)
    upd = rng.sample(ids, live // 100)
    for i in upd:
        if rng.random() < 0.2:
            _, email = person(rng, i)
            con.execute("UPDATE people SET score=?, payload=?, email=? WHERE id=?", (round(rng.random() * 1000, 3), payload(rng), email, i))
        else:
            con.execute("UPDATE people SET score=?, payload=? WHERE id=?", (round(rng.random() * 1000, 3), payload(rng), i))
    dels = set(rng.sample(ids, live // 2000))
    con.executemany("DELETE FROM people WHERE id=?", [(i,) for i in dels])
    ids = [i for i in ids if i not in dels]
    nins = live // 1000
    con.executemany("INSERT INTO people VALUES (?,?,?,?,?)", [row(rng, i) for i in range(next_id, next_id + nins)])
    ids.extend(range(next_id, next_id + nins))
    next_id += nins
    snapshot(v)
    print("v%02d: updated %d, deleted %d, inserted %d, %.1f MB" % (v, len(upd), len(dels), nins, os.path.getsize(path) / 1e6), flush=True)
con.close()
os.remove(path)
print("sqlite series done in %.1fs" % (time.time() - t0))
