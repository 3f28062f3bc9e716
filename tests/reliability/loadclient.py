"""One client process of the load battery (``test_load.py``): imports the shared
set of records, shuffled and spelled its own way, in batches spread over several
server processes, and reports every answer it got."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import httpx

BATCH = 50
COMPANIES = ["Société Générale", "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark"]


def shared_records(n: int) -> list[dict[str, Any]]:
    """``n`` distinct contacts, each findable by exactly one key: an email (60%), a
    phone (20%) or a name (20%), most naming one of a few companies."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        rec: dict[str, Any] = {"first_name": f"Load{i}", "job_title": "load"}
        kind = i % 10
        if kind < 6:
            rec["email"] = f"load{i}@race.example"
        elif kind < 8:
            rec["phone"] = f"+3361{i:07d}"
        else:
            rec["last_name"] = f"Person{i}"
        if i % 4:
            rec["company_name"] = COMPANIES[i % len(COMPANIES)]
        out.append(rec)
    return out


def spelled(rec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same record as another client would type it."""
    rec = dict(rec)
    if "email" in rec and rng.random() < 0.5:
        rec["email"] = rec["email"].upper()
    if "phone" in rec and rng.random() < 0.5:
        digits = rec["phone"][3:]
        rec["phone"] = "0" + " ".join(digits[i : i + 2] for i in range(0, 9, 2)).strip()
    if "last_name" in rec and rng.random() < 0.5:
        rec["first_name"], rec["last_name"] = rec["first_name"].upper(), f"  {rec['last_name']} "
    if "company_name" in rec and rng.random() < 0.5:
        rec["company_name"] = rec["company_name"].upper().replace("É", "E")
    return rec


def run_client(urls: list[str], token: str, seed: int, n: int) -> dict[str, Any]:
    rng = random.Random(seed)
    records = [spelled(r, rng) for r in shared_records(n)]
    rng.shuffle(records)
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    created: list[str] = []
    counts = Counter[str]()
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.Client(base_url=u, headers=headers, timeout=300) for u in urls]
    try:
        for k, start in enumerate(range(0, n, BATCH)):
            http = clients[(k + seed) % len(clients)]
            r = http.post(
                "/api/v1/import/contacts", json={"records": records[start : start + BATCH]}
            )
            statuses[r.status_code] += 1
            if "locked" in r.text.lower() or r.status_code != 200:
                problems.append(f"{r.status_code}: {r.text[:300]}")
                continue
            body = r.json()
            for key in ("created", "duplicates", "failed"):
                counts[key] += body[key]
            created += [x["id"] for x in body["results"] if x["status"] == "created"]
    finally:
        for c in clients:
            c.close()
    return {"statuses": dict(statuses), "problems": problems, "created_ids": created, **counts}
