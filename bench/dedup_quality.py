"""Duplicate detection benchmark: how right (precision, recall, F1) and how fast.

Generates a labelled set of contacts (deterministic seed): people, some of them
entered again with the noise people make (typos, swapped neighbouring letters,
nicknames, initials, swapped first and last names, case/whitespace/accent noise,
phone formats), and true homonyms (same name, another email); 80% of people work at
one of 5,000 companies, and a copy keeps the company 80% of the time. Each record carries the
id of the person it stands for, so every pair that detection puts in one group is
right or wrong. The set is bulk-loaded (``records.repository.insert_records``, big
transactions, then ANALYZE) into a fresh database (SQLite file in a temp dir;
PostgreSQL database dropped at the end). Then, per database:

* ``detect`` in exact and in fuzzy mode over all records: seconds (wall, and this
  process's CPU, which other work on the machine does not inflate) and records/s;
* pairwise precision, recall and F1 of the groups found, overall and per noise kind,
  and for each extra fuzzy threshold given;
* 50-record import batches of typo'd copies (dry run), with and without
  ``on_possible_duplicate=hold``: median ms per batch.

    .venv/bin/python bench/dedup_quality.py                     # 200,000 contacts, both
    .venv/bin/python bench/dedup_quality.py --databases sqlite --size 20000

PostgreSQL: ``KASAR_BENCH_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres)
must be allowed to create and drop databases.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

from _common import database
from sqlalchemy import Engine, text

from kasar.db.engine import make_engine, read_transaction, write_transaction
from kasar.db.migrate import upgrade
from kasar.dedup.detect import find_groups
from kasar.dedup.names import NICKNAMES
from kasar.imports.service import ImportOptions, import_records
from kasar.records.repository import insert_records, new_row
from kasar.records.validation import validate_write
from kasar.schema.repository import load_workspace

SEED = 7
LOAD_CHUNK = 20_000
DUPLICATE_SHARE, HOMONYM_SHARE = 0.15, 0.03
COMPANIES = 5000
FIRST = (  # noqa: SIM905
    "Robert William Elizabeth James Michael Katherine Thomas Richard Anthony David Daniel "
    "Joseph Edward Susan Jennifer Margaret Christopher Alexander Steven Andrew Matthew "
    "Nicholas Patrick Benjamin Charles Henry John Timothy Emma Olivia Sophia Laura Sarah "
    "Jean Marie Pierre Sophie Luc Hugo Léa Louis Chloé Éloïse Hélène François Zoé Jérôme "
    "Stéphane Frédéric Sébastien Céline Noémie Nicolas Emmanuel Maxime Florian Isabelle "
    "Valérie Dominique Véronique Caroline Catherine Philippe Jean-Pierre Jean-Michel "
    "Jean-Philippe Anne Paul Julien Camille Manon Inès Lucas Gabriel Arthur Raphaël Adam "
    "Nathalie Sandrine Aurélie Julie Thierry Olivier Christophe Laurent Vincent Bruno"
).split()
LAST = (  # noqa: SIM905
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier "
    "Dupont Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc Guérin "
    "Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont Lopez Fontaine "
    "Chevalier Robin Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor "
    "Moore Jackson White Harris Clark Lewis Walker Hall Allen Young King Wright Scott Green "
    "Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker "
    "Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey"
).split()
SYLLABLES = (  # noqa: SIM905
    "ker bra lo zach gue nec ril tan vo mar du pen hel bos cor vil lan dre ga bou "
    "fer ni sau lec ham ton ber gal mon tes rin po chal quin vas del fa ro mi sen"
).split()
LAST_WEIGHTS = [1 / (rank + 10) for rank in range(1, len(LAST) + 1)]
NOISES = ("case_ws", "phone_format", "typo", "transposition", "nickname", "swapped", "initial")
_NICKS_OF: dict[str, list[str]] = defaultdict(list)
for _nick, _names in sorted(NICKNAMES.items()):
    for _name in _names:
        _NICKS_OF[_name].append(_nick)


def ascii_fold(s: str) -> str:
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class Generator:
    """People (``entity`` ids) and their records, with the noise each duplicate got."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serial = 0

    def last_name(self) -> str:
        if self.rng.random() < 0.6:  # common names, the most common ~2% of all
            return self.rng.choices(LAST, weights=LAST_WEIGHTS)[0]
        parts = self.rng.randint(2, 3)
        return "".join(self.rng.choice(SYLLABLES) for _ in range(parts)).capitalize()

    def person(self, first: str | None = None, last: str | None = None) -> dict[str, Any]:
        self.serial += 1
        first = first or self.rng.choice(FIRST)
        last = last or self.last_name()
        local = ascii_fold(f"{first}.{last}").lower().replace(" ", "").replace("'", "")
        rec: dict[str, Any] = {"first_name": first, "last_name": last}
        rec["email"] = f"{local}{self.serial}@example{self.serial % 50}.com"
        if self.rng.random() < 0.5:
            rec["phone"] = f"+336{self.rng.randrange(10**8):08d}"
        if self.rng.random() < 0.8:
            rec["company"] = self.rng.randrange(COMPANIES)  # linked at load time
        return rec

    def typo(self, word: str, swap: bool = False) -> str:
        i = self.rng.randrange(1, max(2, len(word) - 1))
        if swap and len(word) > 3:
            i = min(i, len(word) - 2)
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        op = self.rng.choice(("sub", "del", "ins"))
        c = self.rng.choice("aeioulnrst")
        return {"sub": word[:i] + c + word[i + 1 :], "del": word[:i] + word[i + 1 :]}.get(
            op, word[:i] + c + word[i:]
        )

    def variant(self, base: dict[str, Any], noise: str) -> tuple[str, dict[str, Any]]:
        """The record someone typed again for ``base``, and the noise it really got."""
        first, last = base["first_name"], base["last_name"]
        rec: dict[str, Any] = {}
        if noise == "case_ws":
            rec = {"first_name": f"  {ascii_fold(first).upper()} ", "last_name": last.lower()}
            rec["email"] = base["email"].upper()
        elif noise == "phone_format" and "phone" in base:
            national = "0" + base["phone"][3:]
            rec = {"first_name": first, "last_name": last}
            rec["phone"] = " ".join(national[i : i + 2] for i in range(0, 10, 2))
        elif noise == "typo":
            which = self.rng.choice(("first_name", "last_name"))
            rec = {"first_name": first, "last_name": last}
            rec[which] = self.typo(rec[which])
        elif noise == "transposition":
            rec = {"first_name": first, "last_name": self.typo(last, swap=True)}
        elif noise == "nickname" and _NICKS_OF.get(ascii_fold(first).lower()):
            nick = self.rng.choice(_NICKS_OF[ascii_fold(first).lower()])
            rec = {"first_name": nick.title(), "last_name": last}
        elif noise == "swapped":
            rec = {"first_name": last, "last_name": first}
        elif noise == "initial":
            rec = {"first_name": first[0] + ".", "last_name": last}
        else:  # the noise does not apply to this person: a typo instead
            return self.variant(base, "typo")
        if noise not in ("case_ws", "phone_format") and self.rng.random() < 0.3:
            rec["email"] = base["email"]  # the easy case: same email, found by exact keys
        if "company" in base and self.rng.random() < 0.8:
            rec["company"] = base["company"]
        return noise, rec

    def dataset(self, size: int) -> list[tuple[int, str, dict[str, Any]]]:
        """(entity, noise, record) triples, shuffled; noise "" for originals."""
        out: list[tuple[int, str, dict[str, Any]]] = []
        entity = 0
        while len(out) < size:
            base = self.person()
            out.append((entity, "", base))
            roll = self.rng.random()
            if roll < DUPLICATE_SHARE:
                noise, rec = self.variant(base, self.rng.choice(NOISES))
                out.append((entity, noise, rec))
            elif roll < DUPLICATE_SHARE + HOMONYM_SHARE:
                entity += 1
                out.append((entity, "homonym", self.person(base["first_name"], base["last_name"])))
            entity += 1
        out = out[:size]
        self.rng.shuffle(out)
        return out


def load(engine: Engine, data: list[tuple[int, str, dict[str, Any]]]) -> dict[str, int]:
    """Bulk-load the companies, then the contacts (validated like an import, linked to
    their company); record id -> index in ``data``."""
    ids: dict[str, int] = {}
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        obj = ws.object("companies")
        companies = [
            new_row(validate_write(obj, {"name": f"Company {n}"}).values) for n in range(COMPANIES)
        ]
        insert_records(conn, ws, obj, companies)
    for lo in range(0, len(data), LOAD_CHUNK):
        with write_transaction(engine) as conn:
            ws = load_workspace(conn)
            obj = ws.object("contacts")
            rows = []
            for i in range(lo, min(len(data), lo + LOAD_CHUNK)):
                rec = dict(data[i][2])
                company = rec.pop("company", None)
                row = new_row(validate_write(obj, rec).values)
                if company is not None:
                    row["company_id"] = companies[company]["id"]
                ids[row["id"]] = i
                rows.append(row)
            insert_records(conn, ws, obj, rows)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return ids


def pairs_of(groups: list[list[int]]) -> set[tuple[int, int]]:
    return {(a, b) for g in groups for a, b in combinations(sorted(g), 2)}


def quality(
    data: list[tuple[int, str, dict[str, Any]]], found: set[tuple[int, int]]
) -> dict[str, tuple[float, float, float]]:
    """Pairwise precision, recall, F1: overall, and recall per noise kind."""
    members: dict[int, list[int]] = defaultdict(list)
    for i, (entity, _, _) in enumerate(data):
        members[entity].append(i)
    truth = pairs_of(list(members.values()))
    hit = len(found & truth)
    p = hit / len(found) if found else 1.0
    r = hit / len(truth) if truth else 1.0
    out = {"all": (p, r, 2 * p * r / (p + r) if p + r else 0.0)}
    by_noise: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for a, b in truth:
        by_noise[data[a][1] or data[b][1]].add((a, b))
    for noise, wanted in sorted(by_noise.items()):
        out[noise] = (float("nan"), len(wanted & found) / len(wanted), float(len(wanted)))
    homonyms = {(a, b) for a, b in found if "homonym" in (data[a][1], data[b][1])}
    wrong = {pair for pair in homonyms if pair not in truth}
    out["homonym pairs wrongly grouped"] = (float(len(wrong)), float("nan"), float("nan"))
    return out


def run(kind: str, data: list[tuple[int, str, dict[str, Any]]], thresholds: list[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp), "dedup") as url:
        engine = make_engine(url)
        upgrade(engine)
        began = time.perf_counter()
        index = load(engine, data)
        print(f"{kind}: loaded {len(data):,} contacts in {time.perf_counter() - began:.1f} s")
        detect(engine, data, index, "exact", None)
        for n, threshold in enumerate(thresholds):
            detect(engine, data, index, "fuzzy", threshold, details=n == 0)
        import_batches(engine, data)
        engine.dispose()


def detect(
    engine: Engine,
    data: list[tuple[int, str, dict[str, Any]]],
    index: dict[str, int],
    mode: str,
    threshold: float | None,
    details: bool = True,
) -> None:
    with read_transaction(engine) as conn:
        began, cpu = time.perf_counter(), time.process_time()
        groups = find_groups(conn, load_workspace(conn), "contacts", mode=mode, threshold=threshold)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    found = pairs_of([[index[rid] for rid in g.ids] for g in groups])
    rate = len(data) / elapsed
    label = mode + (f" {threshold:.2f}" if threshold is not None else "")
    shown = f"{elapsed:6.1f} s (cpu {cpu:5.1f} s)  {rate:9,.0f} records/s  {len(groups):,} groups"
    print(f"  detect {label:<11} {shown}")
    for name, (p, r, f) in quality(data, found).items():
        if name == "all":
            print(f"    precision {p:.3f}  recall {r:.3f}  F1 {f:.3f}")
        elif not details:
            continue
        elif name.startswith("homonym pairs"):
            print(f"    {name}: {p:.0f}")
        else:
            print(f"    recall {name:<14} {r:.3f}  ({f:.0f} pairs)")


def import_batches(engine: Engine, data: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Median time of a 50-record import (dry run: nothing stays) of typo'd copies of
    stored people, with and without the review-queue look-up."""
    gen = Generator(SEED + 1)
    originals = [rec for _, noise, rec in data if not noise]
    for option in ("create", "hold"):
        times, held = [], 0
        for n in range(7):
            batch = [gen.variant(rec, "typo")[1] for rec in originals[n * 50 : n * 50 + 50]]
            batch = [{k: v for k, v in rec.items() if k != "company"} for rec in batch]
            with write_transaction(engine) as conn:
                options = ImportOptions(dry_run=True, on_possible_duplicate=option)
                began = time.perf_counter()
                result = import_records(conn, load_workspace(conn), "contacts", batch, options)
                times.append(time.perf_counter() - began)
                held += result.held
        ms = statistics.median(times) * 1000
        print(f"  import 50, on_possible_duplicate={option:<6} {ms:5.0f} ms/batch  held {held}/350")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument(
        "--thresholds", default="0.85", help="fuzzy thresholds (the first one in detail)"
    )
    args = parser.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    data = Generator(SEED).dataset(args.size)
    kinds = Counter(noise or "original" for _, noise, _ in data)
    print(f"{args.size:,} records: " + ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items())))
    for kind in args.databases.split(","):
        run(kind, data, thresholds)


if __name__ == "__main__":
    main()
