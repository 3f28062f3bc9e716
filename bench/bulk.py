"""Bulk benchmark (issue 6, "Speed"): import jobs and export jobs at 100,000 rows
(and 1,000,000 with ``--full``), against django-import-export and the database's
own bulk load and dump.

For each size a contacts CSV is generated (fixed seed): about 10% of its rows
repeat an earlier person in another form (email upper-cased and padded, phone in
another format without the email, same email under another first name, name
upper-cased with extra spaces) and about 2% are invalid (bad email, bad phone,
no first name). Then, per database kind (SQLite file; PostgreSQL database created
for the run and dropped at the end):

- **Kasar import job**: in a child process, the file is stored as a job (the
  upload, timed apart) and the worker's own ``run_one`` imports it with validation
  and duplicate detection; peak RSS of the child and of its pool (``VmHWM``: the
  ``getrusage`` figure of a child includes its parent's size when it was forked);
- **raw bulk load** of the same file into a plain table: SQLite ``executemany``
  (csv module, one transaction), PostgreSQL ``COPY FROM STDIN (FORMAT csv)``;
- **export job**: the contacts table is topped up to exactly N rows, then an export
  job writes them as CSV (``run_one``), against the database's own dump of the same
  query: SQLite ``SELECT`` + csv module, PostgreSQL ``COPY (SELECT ...) TO STDOUT``.

And once per size **django-import-export** 4 (``ModelResource`` with
``use_bulk=True`` and ``skip_diff``, ``tablib.Dataset`` read from the same CSV, a
temporary SQLite file; no validation, no deduplication), in a child process.

    .venv/bin/python bench/bulk.py                 # 100,000 rows, both databases (~5 min)
    .venv/bin/python bench/bulk.py --full          # and 1,000,000 (long: run it in the background)
    .venv/bin/python bench/bulk.py --databases sqlite --sizes 20000
    .venv/bin/python bench/bulk.py --exports-only --sizes 1000000   # export jobs only (~5 min)
    .venv/bin/python bench/bulk.py --kasar-imports-only --databases sqlite  # with CPU times

Needs ``pip install django django-import-export`` (bench only). PostgreSQL:
``KASAR_BENCH_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres) must
be allowed to create and drop databases.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
from _common import database
from sqlalchemy import Engine, func, select, text

from kasar.db.engine import make_engine, read_transaction, snapshot_transaction, write_transaction
from kasar.db.migrate import upgrade
from kasar.exports.job_routes import parse_export_job
from kasar.exports.jobs import OUTPUT, create_export_job, read_output
from kasar.exports.service import parse_request, select_rows
from kasar.imports.job_options import parse_job_options
from kasar.imports.jobs import create_import_job
from kasar.jobs import repository as jobs_repo
from kasar.jobs.blobs import CHUNK_BYTES, blob_size, delete_blob
from kasar.jobs.runtime import run_one
from kasar.records.repository import insert_records, new_row
from kasar.records.validation import validate_write
from kasar.schema.repository import load_workspace

HEADER = ["First Name", "Last Name", "Email", "Phone", "Company", "City", "Job Title"]
COLUMNS = ["first_name", "last_name", "email", "phone", "company", "city", "job_title"]
FIRST = ["Jean", "Marie", "Émile", "Sophie", "Luc", "Chloé", "Hugo", "Léa", "Zoë", "Noé", "Paul"]
SYLLABLES = ["ma", "ri", "du", "bo", "ne", "la", "ger", "vin", "mo", "ret", "pa", "cha", "lu"]
CITIES = ["Paris", "Lyon", "Nantes", "Lille", "Montréal", "Bruxelles", "Genève"]
TITLES = ["Engineer", "CEO", "Head of Sales", "Buyer", "CFO", ""]


# --- the file ---------------------------------------------------------------------------


def _person(i: int, rng: random.Random) -> list[str]:
    first = rng.choice(FIRST)
    last = "".join(rng.choice(SYLLABLES) for _ in range(4)).capitalize()
    email = f"{first.lower()}.{last.lower()}{i}@example{i % 50}.com"
    phone = ""
    if rng.random() < 0.6:
        digits = f"6{i:08d}"
        phone = rng.choice(
            [
                f"+33{digits}",
                f"0{digits[0]} {digits[1:3]} {digits[3:5]} {digits[5:7]} {digits[7:]}",
                f"+33 {digits}",
            ]
        )
    company = f"Company {rng.randrange(2000)}"
    return [first, last, email, phone, company, rng.choice(CITIES), rng.choice(TITLES)]


def _duplicate(row: list[str], rng: random.Random) -> list[str]:
    first, last, email, phone, *rest = row
    form = rng.randrange(4)
    if form == 1 and phone:  # no email, the phone written another way
        digits = phone.replace(" ", "").removeprefix("+33").removeprefix("0")
        return [
            first,
            last,
            "",
            f"0{digits[0]}.{digits[1:3]}.{digits[3:5]}.{digits[5:7]}.{digits[7:]}",
            *rest,
        ]
    if form == 2:  # same email, another first name
        return [rng.choice(FIRST), last, email, phone, *rest]
    if form == 3:  # name upper-cased with extra spaces
        return [f"  {first.upper()} ", f" {last.upper()}  ", email, phone, *rest]
    return [first, last, f"  {email.upper()} ", phone, *rest]


def _invalid(row: list[str], rng: random.Random) -> list[str]:
    form = rng.randrange(3)
    if form == 0:
        return [row[0], row[1], "not-an-email", *row[3:]]
    if form == 1:
        return [*row[:3], "12ab", *row[4:]]
    return ["", *row[1:]]


def generate(path: Path, rows: int, seed: int = 6) -> None:
    rng = random.Random(seed)
    people: list[list[str]] = []
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(rows):
            roll = rng.random()
            if roll < 0.10 and people:
                writer.writerow(_duplicate(rng.choice(people), rng))
            elif roll < 0.12:
                writer.writerow(_invalid(_person(i, rng), rng))
            else:
                person = _person(i, rng)
                people.append(person)
                writer.writerow(person)


# --- child processes --------------------------------------------------------------------


def child_kasar(db_url: str, file: Path) -> dict[str, Any]:
    """Store the file as an import job, run it with the worker's code, report."""
    engine = make_engine(db_url)
    started = time.perf_counter()
    with write_transaction(engine) as conn, file.open("rb") as f:
        options = {"object": "contacts", "mapping": {"Company": "company_name"}}
        opts = parse_job_options(options, load_workspace(conn), filename=file.name)
        opts = replace(opts, format="csv")
        content = iter(lambda: f.read(CHUNK_BYTES), b"")
        job = create_import_job(conn, opts, content, created_by="bench")
    upload = time.perf_counter() - started
    watcher = ChildrenPeak()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    assert run_one(engine, "bench-worker")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    pool_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)  # the pool ended with the job
    with read_transaction(engine) as conn:
        done = jobs_repo.get_job(conn, job.id).to_api()
    assert done["state"] == "completed", done["error"]
    watcher.stop()
    own, pool = peak_rss_mb(), watcher.peak_mb
    return {
        "seconds": seconds,
        "upload": upload,
        "counters": done["counters"],
        "rss_mb": own,
        "pool_rss_mb": pool,
        "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        "pool_cpu": pool_cpu.ru_utime + pool_cpu.ru_stime,
    }


def child_django(file: Path, workdir: Path) -> dict[str, Any]:
    """django-import-export's bulk mode on the same file, into a temporary SQLite."""
    import django
    from django.conf import settings

    db = workdir / "django.db"
    db.unlink(missing_ok=True)
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db)}},
        INSTALLED_APPS=["import_export"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    import tablib
    from django.db import connection, models
    from import_export import fields, resources

    class Contact(models.Model):
        first_name = models.CharField(max_length=200, blank=True)
        last_name = models.CharField(max_length=200, blank=True)
        email = models.EmailField(max_length=254, blank=True)
        phone = models.CharField(max_length=40, blank=True)
        company = models.CharField(max_length=200, blank=True)
        city = models.CharField(max_length=200, blank=True)
        job_title = models.CharField(max_length=200, blank=True)

        class Meta:
            app_label = "bench_bulk"

    with connection.schema_editor() as editor:
        editor.create_model(Contact)

    declared = {
        c: fields.Field(attribute=c, column_name=h) for c, h in zip(COLUMNS, HEADER, strict=True)
    }
    meta = type(
        "Meta",
        (),
        {
            "model": Contact,
            "fields": tuple(COLUMNS),
            "use_bulk": True,
            "batch_size": 1000,
            "skip_diff": True,
            "force_init_instance": True,
        },
    )
    resource_class = type("ContactResource", (resources.ModelResource,), {**declared, "Meta": meta})

    started = time.perf_counter()
    with file.open(encoding="utf-8") as f:
        dataset = tablib.Dataset().load(f.read(), format="csv")
    result = resource_class().import_data(dataset, dry_run=False, use_transactions=True)
    seconds = time.perf_counter() - started
    assert not result.has_errors(), result.base_errors
    return {"seconds": seconds, "stored": Contact.objects.count(), "rss_mb": peak_rss_mb()}


def _hwm_mb(pid: int | str = "self") -> float | None:
    """A process's peak resident memory (``VmHWM``, Linux), in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ``getrusage``: on Linux its maximum carries
    over ``fork`` and ``exec``, so a child started by a big parent reports the
    parent's size (the 1,000,000-row run once showed 436 MB for a 150 MB job)."""
    hwm = _hwm_mb()
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildrenPeak:
    """The largest peak RSS among this process's children (the validation pool),
    read every half second while they live."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for task in Path("/proc/self/task").glob("*/children"):
                for pid in task.read_text().split():
                    self.peak_mb = max(self.peak_mb, _hwm_mb(pid) or 0.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the database's own bulk load and dump ----------------------------------------------


def raw_load(kind: str, url: str, file: Path) -> float:
    ddl = "CREATE TABLE raw_contacts ({})".format(", ".join(f"{c} TEXT" for c in COLUMNS))
    if kind == "sqlite":
        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(ddl)
        started = time.perf_counter()
        with file.open(newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            next(rows)
            db.execute("BEGIN")
            db.executemany(f"INSERT INTO raw_contacts VALUES ({', '.join('?' * 7)})", rows)
            db.execute("COMMIT")
        seconds = time.perf_counter() - started
        db.close()
        return seconds
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(ddl)
        started = time.perf_counter()
        with (
            pg.cursor() as cur,
            cur.copy("COPY raw_contacts FROM STDIN WITH (FORMAT csv, HEADER)") as copy,
            file.open("rb") as f,
        ):
            while block := f.read(CHUNK_BYTES):
                copy.write(block)
        return time.perf_counter() - started


def raw_dump(engine: Engine, url: str) -> float:
    """The export's own query over the stored values, unformatted, as CSV."""
    with snapshot_transaction(engine) as conn:
        ws = load_workspace(conn)
        req = parse_request(ws, "contacts", default_limit=None, max_limit=None)
        stmt, cols = select_rows(conn, ws, req)
        raw = stmt.with_only_columns(*[cols.expr(k).label(k) for k in req.keys])
        compiled = raw.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    started = time.perf_counter()
    if engine.dialect.name == "sqlite":
        params = [compiled.params[k] for k in compiled.positiontup or ()]
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        with open(os.devnull, "w", newline="") as sink:
            cur = db.execute(sql, params)
            writer = csv.writer(sink)
            writer.writerow([d[0] for d in cur.description])
            writer.writerows(cur)
        db.close()
    else:
        with psycopg.connect(url) as pg, pg.cursor() as cur:
            query = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)"
            with cur.copy(query, compiled.params) as copy:
                for _ in copy:
                    pass
    return time.perf_counter() - started


# --- export jobs ------------------------------------------------------------------------


def top_up(engine: Engine, rows: int) -> None:
    """Exactly ``rows`` contacts: add plain ones after what the import stored."""
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        obj = ws.object("contacts")
        have = conn.execute(select(func.count()).select_from(ws.table("contacts"))).scalar_one()
        template = validate_write(obj, {"first_name": "Extra", "city": "Paris"}).values
        for start in range(have, rows, 20_000):
            batch = [
                new_row({**template, "last_name": f"Extra {i}"})
                for i in range(start, min(rows, start + 20_000))
            ]
            insert_records(conn, ws, obj, batch)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def export_job(engine: Engine) -> tuple[float, float, int, int]:
    """One CSV export job of every contact: job seconds, seconds to read the file
    back (decompressed), its bytes, and the bytes stored (gzip)."""
    with write_transaction(engine) as conn:
        opts = parse_export_job(conn, load_workspace(conn), {"object": "contacts", "format": "csv"})
        job = create_export_job(conn, opts, created_by="bench")
    started = time.perf_counter()
    assert run_one(engine, "bench-worker")
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    size = sum(len(chunk) for chunk in read_output(engine, job.id))
    download = time.perf_counter() - started
    with write_transaction(engine) as conn:
        assert jobs_repo.get_job(conn, job.id).state == "completed"
        stored = blob_size(conn, job.id, OUTPUT)
        delete_blob(conn, job.id, OUTPUT)
    return seconds, download, size, stored


# --- the run ----------------------------------------------------------------------------


def say(line: str) -> None:
    print(line, flush=True)


def bench_size(
    size: int, kinds: list[str], workdir: Path, rounds: int, imports: bool, only_kasar: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    say(f"\n## {size:,} rows")
    file = workdir / f"contacts_{size}.csv"
    if imports or only_kasar:
        generate(file, size)
        say(f"generated {file.stat().st_size / 1e6:.1f} MB of CSV")
    if only_kasar:
        for kind in kinds:
            with database(kind, workdir, f"bulk_{size}") as url:
                engine = make_engine(url)
                upgrade(engine)
                engine.dispose()
                out[kind] = {"import": run_child("kasar", url, str(file))}
                say_import(kind, size, out[kind]["import"])
        return out
    if imports:
        django = run_child("django", str(file), str(workdir))
        out["django"] = django
        say(
            f"django-import-export (bulk, SQLite): {django['seconds']:.1f} s, "
            f"{size / django['seconds']:,.0f} rows/s, {django['stored']:,} stored, "
            f"peak RSS {django['rss_mb']:.0f} MB"
        )
    for kind in kinds:
        with database(kind, workdir, f"bulk_{size}") as url:
            engine = make_engine(url)
            upgrade(engine)
            if imports:
                out[kind] = bench_import(kind, url, file, size, out["django"])
            top_up(engine, size)
            jobs, dumps = [], []
            for _ in range(rounds):  # alternated, so that load from elsewhere weighs on both
                jobs.append(export_job(engine))
                dumps.append(raw_dump(engine, url))
            job_s, download_s, size_b, stored_b = min(jobs)
            dump_s = min(dumps)
            say(
                f"{kind}: export job CSV {job_s:.2f} s ({size / job_s:,.0f} rows/s, "
                f"{size_b / 1e6:.0f} MB stored as {stored_b / 1e6:.0f} MB; read back in "
                f"{download_s:.2f} s) | dump {dump_s:.2f} s "
                f"({size / dump_s:,.0f} rows/s) | ratio {job_s / dump_s:.2f} (goal <= 2)"
            )
            engine.dispose()
    return out


def bench_import(
    kind: str, url: str, file: Path, size: int, django: dict[str, Any]
) -> dict[str, Any]:
    kasar = run_child("kasar", url, str(file))
    rate = size / kasar["seconds"]
    raw = raw_load(kind, url, file)
    say_import(kind, size, kasar)
    say(
        f"{kind}: raw bulk load {raw:.2f} s, {size / raw:,.0f} rows/s | "
        f"vs django {rate / (size / django['seconds']):.2f}x (goal >= 5) | job / raw "
        f"{kasar['seconds'] / raw:.1f}x (goal <= 5)"
    )
    return {"import": kasar, "raw_load": raw}


def say_import(kind: str, size: int, kasar: dict[str, Any]) -> None:
    c = kasar["counters"]
    pool = f"pool {p:.0f} MB" if (p := kasar["pool_rss_mb"]) else "no validation pool"
    say(
        f"{kind}: import job {kasar['seconds']:.1f} s, {size / kasar['seconds']:,.0f} rows/s "
        f"(upload {kasar['upload']:.1f} s; CPU {kasar['cpu']:.1f} s in the worker, "
        f"{kasar['pool_cpu']:.1f} s in its pool); created {c['created']:,}, duplicates "
        f"{c['duplicates']:,}, failed {c['failed']:,}; peak RSS {kasar['rss_mb']:.0f} MB "
        f"({pool})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also 1,000,000 rows (long)")
    parser.add_argument("--sizes", help="comma-separated row counts (overrides --full)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3, help="export rounds (best is kept)")
    parser.add_argument("--exports-only", action="store_true", help="skip the imports")
    parser.add_argument(
        "--kasar-imports-only",
        action="store_true",
        help="only Kasar's import jobs (no django-import-export, raw load or export)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = (
            child_kasar(rest[0], Path(rest[1]))
            if kind == "kasar"
            else (child_django(Path(rest[0]), Path(rest[1])))
        )
        print(json.dumps(result))
        return
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([100_000, 1_000_000] if args.full else [100_000])
    )
    kinds = args.databases.split(",")
    say(
        f"bench/bulk.py: sizes {sizes}, databases {kinds}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="kasar-bulk-") as tmp:
        results = {
            size: bench_size(
                size, kinds, Path(tmp), args.rounds, not args.exports_only, args.kasar_imports_only
            )
            for size in sizes
        }
    if len(sizes) > 1 and not args.exports_only and not args.kasar_imports_only:
        small, large = results[sizes[0]], results[sizes[-1]]
        for kind in kinds:
            a, b = small[kind]["import"], large[kind]["import"]
            say(
                f"{kind}: peak RSS {sizes[-1]:,} / {sizes[0]:,} rows: import process "
                f"{b['rss_mb'] / a['rss_mb']:.2f} (goal <= 1.2), pool {b['pool_rss_mb']:.0f} / "
                f"{a['pool_rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
