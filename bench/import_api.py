"""Import API benchmark: does a 50-record batch cost the same at 1,000 and 200,000 contacts?

For each database kind and each size, a fresh database (SQLite file; PostgreSQL
database dropped at the end) is pre-loaded with contacts by a bulk insert
(``records.repository.insert_records``, big transactions, then ANALYZE) and served
by its own uvicorn server. Batches of 50 (45 new contacts, 5 duplicates of stored
ones) then go through ``POST /api/v1/import/contacts`` to each size in turn.
Prints the median time per batch, records per second, and the ratio of the batch
time at the largest size to that at the smallest (goal: under 1.3).

    .venv/bin/python bench/import_api.py                      # both databases, 1k then 200k
    .venv/bin/python bench/import_api.py --databases sqlite --sizes 1000,20000 --batches 20

PostgreSQL: ``KASAR_BENCH_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres)
must be allowed to create and drop databases.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from _common import database, server
from sqlalchemy import Engine, text

from kasar.auth.service import create_token, create_user
from kasar.db.engine import make_engine, write_transaction
from kasar.db.migrate import upgrade
from kasar.records.repository import insert_records, new_row
from kasar.schema.repository import load_workspace

LOAD_CHUNK = 20_000
BATCH = 50
DUPLICATES_PER_BATCH = 5
FIRST = ["Jean", "Marie", "Pierre", "Sophie", "Luc", "Emma", "Hugo", "Léa", "Louis", "Chloé"]
FIRST += [
    f"{a}{b}" for a in ("Ma", "Lu", "Ca", "Ro", "Sa") for b in ("rie", "cas", "mille", "se", "bin")
]
SYLLABLES = ["ber", "dan", "mar", "tin", "lou", "rou", "fon", "ges", "vel", "cor", "gai", "pin"]


def person(i: int, rng: random.Random) -> dict[str, Any]:
    """Contact number ``i``: a unique email, a phone on one in three, and a name drawn
    from 35 x 20,736 (about 0.3 homonyms per name at 200,000 contacts, the order of
    real name statistics; the name rule looks at each homonym's emails and phones)."""
    last = "".join(rng.choice(SYLLABLES) for _ in range(4)).capitalize()
    rec: dict[str, Any] = {"first_name": rng.choice(FIRST), "last_name": last}
    rec.update(email=f"c{i}@example{i % 97}.com", job_title="Engineer", city="Paris")
    if i % 3 == 0:
        rec["phone"] = f"+336{i:08d}"
    return rec


def stored_row(rec: dict[str, Any]) -> dict[str, Any]:
    values = dict(rec)
    for name in ("email", "phone"):
        if name in values:
            values[f"{name}_all"] = json.dumps([values[name]])
    return new_row(values)


def preload(engine: Engine, start: int, stop: int) -> None:
    rng = random.Random(start)
    for lo in range(start, stop, LOAD_CHUNK):
        with write_transaction(engine) as conn:
            ws = load_workspace(conn)
            rows = [stored_row(person(i, rng)) for i in range(lo, min(stop, lo + LOAD_CHUNK))]
            insert_records(conn, ws, ws.object("contacts"), rows)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


class Target:
    """One database pre-loaded with ``size`` contacts, served by its own server."""

    def __init__(self, kind: str, size: int, url: str) -> None:
        self.kind, self.size, self.url = kind, size, url
        self.engine = make_engine(url)
        upgrade(self.engine)
        with write_transaction(self.engine) as conn:
            user = create_user(conn, "bench@example.com", role="admin")
            self.token = create_token(conn, user)
        began = time.perf_counter()
        preload(self.engine, 0, size)
        print(f"  {kind}: loaded {size:,} contacts in {time.perf_counter() - began:.1f} s")
        self.rng = random.Random(size)
        self.next_new = 10_000_000
        self.times: list[float] = []

    def batch(self, client: httpx.Client, base: str, record: bool = True) -> None:
        """POST one batch: 45 new contacts, 5 duplicates of stored ones."""
        start, self.next_new = self.next_new, self.next_new + BATCH
        recs = [person(i, self.rng) for i in range(start, start + BATCH - DUPLICATES_PER_BATCH)]
        recs += [
            person(self.rng.randrange(self.size), self.rng) for _ in range(DUPLICATES_PER_BATCH)
        ]
        headers = {"Authorization": f"Bearer {self.token}"}
        began = time.perf_counter()
        r = client.post(f"{base}/api/v1/import/contacts", json={"records": recs}, headers=headers)
        elapsed = time.perf_counter() - began
        body = r.json()
        assert r.status_code == 200 and body["failed"] == 0, r.text
        assert body["duplicates"] >= DUPLICATES_PER_BATCH, body
        if record:
            self.times.append(elapsed)


def bench(kind: str, sizes: list[int], batches: int) -> list[tuple[int, float, float]]:
    """Batches go to the databases in turn (small, large, large, small, ...), so that
    whatever else the machine is doing weighs on every size alike."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        targets, bases = [], []
        for size in sizes:
            url = stack.enter_context(database(kind, Path(tmp), f"n{size}"))
            targets.append(Target(kind, size, url))
            bases.append(stack.enter_context(server(url)))
        with httpx.Client(timeout=120) as client:
            for target, base in zip(targets, bases, strict=True):
                for _ in range(3):  # warm up the server's caches and pool
                    target.batch(client, base, record=False)
            for n in range(batches):
                pairs = list(zip(targets, bases, strict=True))
                for target, base in pairs if n % 2 == 0 else reversed(pairs):
                    target.batch(client, base)
        out = []
        for target in targets:
            target.engine.dispose()
            median = statistics.median(target.times)
            rate = BATCH * len(target.times) / sum(target.times)
            out.append((target.size, median, rate))
            ms = median * 1000
            print(f"  {kind}: {target.size:>9,} stored  {ms:7.1f} ms/batch  {rate:6.0f} rec/s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="1000,200000")
    parser.add_argument("--batches", type=int, default=60)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows = []
    for kind in args.databases.split(","):
        results = bench(kind, sizes, args.batches)
        rows.append((kind, results, results[-1][1] / results[0][1]))
    print(f"\n{'database':<11}{'stored':>10}{'ms/batch':>10}{'rec/s':>8}")
    for kind, results, ratio in rows:
        for size, median, rate in results:
            print(f"{kind:<11}{size:>10,}{median * 1000:>10.1f}{rate:>8.0f}")
        verdict = "ok" if ratio < 1.3 else "OVER GOAL"
        print(f"{kind:<11}ratio {sizes[-1]:,}/{sizes[0]:,}: {ratio:.2f} (goal < 1.3, {verdict})")


if __name__ == "__main__":
    main()
