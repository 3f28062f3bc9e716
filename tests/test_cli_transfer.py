"""``kasar import`` and ``kasar export``, through typer's CliRunner, on both databases;
remote mode against the real app under uvicorn on a free port."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import Result
from sqlalchemy import Engine
from typer.testing import CliRunner

from kasar.cli import app as cli
from kasar.db.engine import read_transaction
from kasar.records import service as records
from kasar.records.query import RecordQuery
from kasar.schema.repository import load_workspace

HEADER = ["row", "status", "record_id", "duplicate_of", "matched_on", "error_code", "message"]
KEYS = ["id", "first_name", "last_name", "email", "city", "company_name"]


def run(db_url: str, command: str, *args: str) -> Result:
    """``command`` is split on spaces; ``args`` are passed as they are."""
    env = {"KASAR_DATABASE_URL": db_url, "COLUMNS": "100"}
    return CliRunner().invoke(cli, [*command.split(), *args], env=env)


def said(result: Result) -> str:
    """Everything the command printed, on one line."""
    return " ".join(result.output.split())


def counts(result: Result) -> list[int]:
    """The summary table's numbers: rows, created, duplicates, failed (, updated)."""
    line = next(line for line in result.stdout.splitlines() if line.startswith("│"))
    return [int(cell.replace(",", "")) for cell in line.strip("│").split("│")]


def stored(engine: Engine) -> list[dict[str, Any]]:
    with read_transaction(engine) as conn:
        query = RecordQuery(KEYS, None, "created_at", "asc")
        page = records.list_records(
            conn, load_workspace(conn), "contacts", query, limit=100, cursor=None
        )
        return page.data


def report_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_with_bom_semicolons_map_and_report(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    file = write(
        tmp_path / "people.csv",
        "\ufeffPrénom;Nom;E-mail;Société;Ville;Pointure\r\n"
        "Ada;Lovelace;ada@example.org;Acme;London;38\r\n"
        "Bob;Dupont;bob@startup.io;;;\r\n"
        "Ada;L.;ADA@example.org;;;\r\n"
        ";Nobody;nobody@example.org;;;\r\n"
        "Eve;Bad;not-an-email;;;\r\n",
    )
    maps = ["Prénom=first_name", "Nom=last_name", "E-mail=email", "Société=company_name"]
    r = run(db_url, "import contacts", str(file), *[f"--map={m}" for m in maps], "--map=Ville=city")
    assert r.exit_code == 0, r.output
    assert "Ignored columns, no field of contacts by that name: Pointure" in said(r)
    assert counts(r) == [5, 2, 1, 2]  # rows, created, duplicates, failed
    ada, bob = stored(engine)
    assert (ada["first_name"], ada["city"], ada["company_name"]) == ("Ada", "London", "Acme")
    assert bob["email"] == "bob@startup.io"
    report = tmp_path / "people.csv.report.csv"
    assert f"Report (3 rows: failures and duplicates): {report}" in said(r)
    rows = report_rows(report)
    assert rows[:3] == [
        HEADER,
        ["3", "duplicate", "", ada["id"], "email", "", ""],
        ["4", "failed", "", "", "", "VALIDATION_ERROR", "Field 'first_name' is required"],
    ]
    assert rows[3][:2] == ["5", "failed"] and "email" in rows[3][6]


def test_xlsx(db_url: str, engine: Engine, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["First name", "Last name", "Email"])
    sheet.append(["Ada", "Lovelace", "ada@example.org"])
    sheet.append([None, None, None])
    sheet.append(["Bob", "Dupont", "bob@startup.io"])
    book.save(tmp_path / "people.xlsx")
    report = tmp_path / "out" / "report.csv"
    report.parent.mkdir()
    r = run(db_url, "import contacts", str(tmp_path / "people.xlsx"), "--report", str(report))
    assert r.exit_code == 0, r.output
    assert [c["first_name"] for c in stored(engine)] == ["Ada", "Bob"]
    assert report_rows(report) == [HEADER]


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_json_and_ndjson_learn_keys_as_they_come(
    db_url: str, engine: Engine, tmp_path: Path, kind: str
) -> None:
    people = [
        {"first_name": "Ada", "email": "ada@example.org"},
        {"first_name": "Bob", "City": "Paris", "shoe_size": 44},
        {"first_name": "Ada", "email": "ada@example.org"},
    ]
    if kind == "json":
        text = json.dumps({"records": people}, indent=2)
    else:
        text = "\n".join(json.dumps(p) for p in people) + "\n"
    r = run(db_url, "import contacts --batch-size 2", str(write(tmp_path / f"p.{kind}", text)))
    assert r.exit_code == 0, r.output
    assert "Ignored columns (found later in the file), no field of contacts by that name: " \
        "shoe_size" in said(r)  # fmt: skip
    assert counts(r) == [3, 2, 1, 0]
    assert [(c["first_name"], c["city"]) for c in stored(engine)] == [
        ("Ada", None),
        ("Bob", "Paris"),
    ]


def test_dry_run_writes_nothing_and_sees_duplicates_across_batches(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    file = write(tmp_path / "p.csv", "first_name,email\nAda,ada@example.org\nAda,ada@example.org\n")
    r = run(db_url, "import contacts --dry-run --batch-size 1", str(file))
    assert r.exit_code == 0, r.output
    assert "dry run: nothing was written" in said(r)
    assert counts(r) == [2, 1, 1, 0]
    assert stored(engine) == []
    assert report_rows(tmp_path / "p.csv.report.csv")[1][:2] == ["2", "duplicate"]


def test_a_bad_row_stops_the_import_and_says_what_was_kept(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    file = write(tmp_path / "p.csv", "first_name,last_name\nA,One\nB,Two\nC,Three,extra\nD,Four\n")
    r = run(db_url, "import contacts --batch-size 2", str(file))
    assert r.exit_code == 2
    assert counts(r) == [2, 2, 0, 0]
    text = said(r)
    assert "Error (VALIDATION_ERROR): Line 4: 3 cells but the header has 2 columns" in text
    assert "Imported before the problem, and kept: 2 rows (up to row 2 of the file)" in text
    assert "Nothing after row 2 was written." in text
    assert [c["first_name"] for c in stored(engine)] == ["A", "B"]


BAD_FILES = [
    ("p.csv", "first_name\nZoë\n".encode("latin-1"), [], "Line 2: the file is not valid UTF-8"),
    ("p.json", b'[{"first_name": "A"},\n {"x": }]', [], "Invalid JSON: Expecting value at line 2"),
    ("p.ndjson", b'{"first_name": "A"}\n{"first_name": "B"\n', [], "Line 2: invalid JSON"),
    ("p.csv", b"first_name\nA\n", ["--map=nope=first_name"], "columns not in the file: 'nope'"),
    ("p.csv", b"first_name\nA\n", ["--map=first_name=x"], "to unknown field 'x'"),
]


@pytest.mark.parametrize(("name", "data", "options", "message"), BAD_FILES)
def test_bad_files_get_one_clear_message(
    db_url: str, engine: Engine, tmp_path: Path, name: str, data: bytes, options: list[str],
    message: str,
) -> None:  # fmt: skip
    (tmp_path / name).write_bytes(data)
    r = run(db_url, "import contacts", str(tmp_path / name), *options)
    assert r.exit_code == 2, r.output
    assert message in said(r) and "Traceback" not in r.output
    assert stored(engine) == []


def test_other_encodings_by_option(db_url: str, engine: Engine, tmp_path: Path) -> None:
    file = write(tmp_path / "p.csv", "first_name;city\nZoë;Orléans\n", "latin-1")
    assert run(db_url, "import contacts --encoding latin-1", str(file)).exit_code == 0
    assert [(c["first_name"], c["city"]) for c in stored(engine)] == [("Zoë", "Orléans")]
    r = run(db_url, "import nope", str(file))
    assert r.exit_code == 2 and "INVALID_OBJECT" in r.output


def seed(db_url: str, tmp_path: Path) -> None:
    file = write(
        tmp_path / "seed.csv",
        "first_name,last_name,email,status,company_name,notes\n"
        'Ada,Lovelace,ada@example.org,qualified,Acme Corp,"=1+1, said she"\n'
        "Bob,Dupont,bob@startup.io,lead,,\n"
        'Cy,Young,cy@example.org,qualified,,"two\nlines"\n',
    )
    assert run(db_url, "import contacts", str(file)).exit_code == 0


def test_export_csv_to_stdout_filtered_and_sorted(db_url: str, tmp_path: Path) -> None:
    seed(db_url, tmp_path)
    command = "export contacts --format csv --sort-by first_name --sort-dir desc"
    r = run(db_url, command, "--fields=first_name,notes", "--filter", "status eq qualified")
    assert r.exit_code == 0, r.output
    assert r.stdout_bytes == b'first_name,notes\r\nCy,"two\nlines"\r\nAda,"\'=1+1, said she"\r\n'
    r = run(db_url, command, "--fields=first_name", "--filter", "company_name equals 'Acme Corp'",
            "--filter", "notes is_not_null")  # fmt: skip
    assert r.stdout_bytes == b"first_name\r\nAda\r\n"


def test_export_json_and_ndjson_files(db_url: str, tmp_path: Path) -> None:
    seed(db_url, tmp_path)
    out, nd = tmp_path / "c.json", tmp_path / "c.ndjson"
    sort = "--sort-by first_name --sort-dir asc"
    r = run(db_url, f"export contacts -o {out} {sort} --limit 1 --fields first_name,email",
            "--filter", "email ends_with @example.org")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text()) == {
        "format": "json",
        "records": [{"first_name": "Ada", "email": "ada@example.org"}],
        "total": 2,
    }
    assert f"Exported 1 record of contacts to {out}" in said(r)
    assert not (tmp_path / "c.json.part").exists()
    r = run(db_url, f"export contacts -o {nd} {sort} --fields first_name", "--filter",
            "company_name is_null")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert nd.read_text() == '{"first_name":"Bob"}\n{"first_name":"Cy"}\n'
    r = run(db_url, f"export contacts -o {tmp_path / 'x.csv'} --filter status")
    assert r.exit_code == 2 and "--filter takes 'field operator value'" in said(r)
    r = run(db_url, f"export contacts -o {tmp_path / 'x.csv'}", "--filter", "shoe_size eq 4")
    assert r.exit_code == 2 and "Unknown field 'shoe_size'" in r.output
    assert not (tmp_path / "x.csv").exists()


def test_round_trip_into_a_fresh_database(
    db_url: str, tmp_path: Path, sqlite_template: Path
) -> None:
    seed(db_url, tmp_path)
    first, again, fresh = tmp_path / "first.csv", tmp_path / "again.csv", tmp_path / "fresh.db"
    assert run(db_url, f"export contacts -o {first}").exit_code == 0
    shutil.copyfile(sqlite_template, fresh)
    r = run(f"sqlite:///{fresh}", "import contacts", str(first))
    assert r.exit_code == 0 and counts(r) == [3, 3, 0, 0], r.output
    assert run(f"sqlite:///{fresh}", f"export contacts -o {again}").exit_code == 0
    assert again.read_bytes() == first.read_bytes()
    r = run(f"sqlite:///{fresh}", "import contacts", str(first))
    assert counts(r) == [3, 0, 3, 0], r.output


def test_remote_import_and_export(
    db_url: str, tmp_path: Path, live_server: str, make_token: Any
) -> None:
    rows = [f"P{i},Person,p{i}@example.org" for i in range(60)] + ["P0,Person,P0@example.org"]
    file = write(tmp_path / "p.csv", "first_name,last_name,email\n" + "\n".join(rows) + "\n")
    remote = ["--server", live_server, "--token", make_token("admin")]
    r = run(db_url, "import contacts", str(file), *remote)
    assert r.exit_code == 0, r.output
    assert counts(r) == [61, 60, 1, 0]  # in batches of 50 and 11
    assert report_rows(tmp_path / "p.csv.report.csv")[1][:2] == ["61", "duplicate"]
    for fmt in ("csv", "json", "ndjson"):
        command = f"export contacts --format {fmt} --fields first_name,email --sort-by email"
        args = ["--sort-dir", "asc", "--filter", "first_name starts_with P1"]
        local, over_http = run(db_url, command, *args), run(db_url, command, *args, *remote)
        assert over_http.exit_code == 0, over_http.output
        assert (
            over_http.stdout_bytes == local.stdout_bytes
            and b"p19@example.org" in local.stdout_bytes
        )
    member = ["--server", live_server, "--token", make_token("member")]
    r = run(db_url, "import contacts", str(file), *member)
    assert r.exit_code == 3 and "PERMISSION_DENIED" in r.output
    r = run(db_url, "export contacts --limit 20000", *remote)
    assert r.exit_code == 2 and "A remote export gives 1 to 10,000 records" in said(r)
    r = run(db_url, "import contacts --server http://127.0.0.1:9 --token x", str(file))
    assert r.exit_code == 1 and "Cannot reach http://127.0.0.1:9" in said(r)
    assert "Traceback" not in r.output
