"""``kasar import``: stream a file through the import engine in batches, locally
(each batch one transaction) or through a server's import API, with a progress bar,
a summary and a per-row report of failures and duplicates."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from kasar.cli import EXIT_CODES, err, open_engine, out
from kasar.cli_remote import BATCH_SIZE, Remote
from kasar.db.engine import write_transaction
from kasar.errors import KasarError, ValidationFailed
from kasar.exports.cells import protect_cell
from kasar.imports.files import match_columns, open_rows
from kasar.imports.service import ImportOptions, import_records
from kasar.schema.repository import load_workspace

LOCAL_BATCH = 1000
REPORT_COLUMNS = (
    "row",
    "status",
    "record_id",
    "duplicate_of",
    "matched_on",
    "error_code",
    "message",
)


class _Rollback(Exception):
    """Ends a dry run's transaction without committing it."""


class ColumnMapper:
    """File columns to fields, with ``--map`` overrides. JSON files reveal their keys
    as they go, so new keys are matched when first seen."""

    def __init__(
        self,
        columns: Sequence[str],
        fields: Sequence[str],
        overrides: Mapping[str, str],
        grows: bool,
    ) -> None:
        self.fields, self.overrides, self.grows = list(fields), dict(overrides), grows
        first = {c: f for c, f in overrides.items() if c in columns} if grows else overrides
        self.by_column, self.ignored = match_columns(columns, fields, first)
        self.seen = set(columns)
        self.late_ignored: list[str] = []

    def map(self, record: Mapping[str, object]) -> dict[str, object]:
        if self.grows and any(key not in self.seen for key in record):
            self._learn([key for key in record if key not in self.seen])
        return {field: record[col] for col, field in self.by_column.items() if col in record}

    def _learn(self, new: list[str]) -> None:
        self.seen.update(new)
        taken = set(self.by_column.values())
        free = [f for f in self.fields if f not in taken]
        wanted = {c: f for c, f in self.overrides.items() if c in new}
        found, ignored = match_columns(new, free, wanted)
        self.by_column.update(found)
        self.late_ignored += ignored

    def never_seen(self) -> list[str]:
        return [c for c in self.overrides if c not in self.seen]


class RowsColumn(ProgressColumn):
    """``12,345 rows  4,321 rows/s``"""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        speed = rows / task.elapsed if task.elapsed else 0.0
        return Text(f"{rows:,} rows  {speed:,.0f} rows/s", style="progress.data.speed")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        RowsColumn(),
        TimeRemainingColumn(),
        console=err,
    )


class Totals:
    def __init__(self) -> None:
        self.rows = self.created = self.duplicates = self.failed = self.updated = 0
        self.last_row = 0

    def add(self, numbers: Sequence[int], answer: Mapping[str, Any]) -> None:
        self.rows += len(numbers)
        self.last_row = numbers[-1] if numbers else self.last_row
        for key in ("created", "duplicates", "failed", "updated"):
            setattr(self, key, getattr(self, key) + int(answer.get(key, 0)))


def write_report(writer: Any, numbers: Sequence[int], answer: Mapping[str, Any]) -> None:
    """One line per failed or duplicate row; ``results`` index into ``numbers``."""
    for result in answer.get("results", []):
        if result.get("status") == "created":
            continue
        error = result.get("error") or {}
        cells = (
            numbers[result["index"]],
            result.get("status"),
            result.get("id"),
            result.get("duplicate_of"),
            ", ".join(result.get("matched_on") or ()),
            error.get("code"),
            error.get("message"),
        )
        writer.writerow(["" if c is None else protect_cell(str(c)) for c in cells])


def parse_map(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        column, sep, field = item.rpartition("=")
        if not sep or not column.strip():
            raise ValidationFailed(f"--map takes column=field, not '{item}'")
        out[column.strip()] = field.strip()
    return out


#: Imports one batch; answers as POST /api/v1/import/{object} does.
Send = Callable[[list[dict[str, object]]], dict[str, Any]]


@contextmanager
def import_target(
    object_name: str,
    options: ImportOptions,
    database_url: str,
    server: str | None,
    token: str | None,
    batch_size: int,
) -> Iterator[tuple[list[str], Send, int]]:
    """The object's keys, a function that imports one batch, and the batch size."""
    if server:
        with Remote(server, token) as remote:
            fields = remote.field_names(object_name)
            yield fields, lambda rows: remote.import_batch(object_name, rows, options), BATCH_SIZE
        return
    if batch_size < 1:
        raise ValidationFailed("--batch-size must be at least 1")
    engine = open_engine(database_url)
    try:
        with write_transaction(engine) as conn:
            fields = load_workspace(conn).object(object_name).all_keys()

        def one_batch(rows: list[dict[str, object]]) -> dict[str, Any]:
            with write_transaction(engine) as conn:
                ws = load_workspace(conn)
                return import_records(conn, ws, object_name, rows, options).to_api()

        if not options.dry_run:
            yield fields, one_batch, batch_size
            return
        # A dry run imports for real in one transaction and rolls it back, so that
        # duplicates between batches are reported as the real import would.
        live = ImportOptions(dry_run=False, on_duplicate=options.on_duplicate)
        try:
            with write_transaction(engine) as conn:
                ws = load_workspace(conn)

                def in_one(rows: list[dict[str, object]]) -> dict[str, Any]:
                    return import_records(conn, ws, object_name, rows, live).to_api()

                yield fields, in_one, batch_size
                raise _Rollback
        except _Rollback:
            pass
    finally:
        engine.dispose()


def run_import(
    object_name: str,
    file: Path,
    fields: list[str],
    send: Send,
    size: int,
    overrides: dict[str, str],
    report_path: Path,
    options: ImportOptions,
    encoding: str | None,
    delimiter: str | None,
) -> None:
    totals = Totals()
    with file.open("rb") as raw:
        source = open_rows(raw, filename=file.name, encoding=encoding, delimiter=delimiter)
        grows = source.format in ("json", "ndjson")
        mapper = ColumnMapper(source.columns, fields, overrides, grows)
        if mapper.ignored:
            _say_ignored(object_name, mapper.ignored)
        with report_path.open("w", newline="", encoding="utf-8") as handle, progress_bar() as bar:
            writer = csv.writer(handle)
            writer.writerow(REPORT_COLUMNS)
            total = None if source.format == "xlsx" else max(file.stat().st_size, 1)
            verb = "Checking" if options.dry_run else "Importing"
            task = bar.add_task(f"{verb} {escape(file.name)}", total=total, rows=0)
            numbers: list[int] = []
            batch: list[dict[str, object]] = []
            try:
                for number, record in source.rows:
                    numbers.append(number)
                    batch.append(mapper.map(record))
                    if len(batch) >= size:
                        _flush(send, numbers, batch, totals, writer)
                        bar.update(task, completed=raw.tell() if total else None, rows=totals.rows)
                if batch:
                    _flush(send, numbers, batch, totals, writer)
                bar.update(task, completed=total, rows=totals.rows)
            except (Exception, KeyboardInterrupt) as exc:
                bar.stop()
                _summary(object_name, totals, options, report_path)
                _stopped(exc, totals, options)
    if mapper.late_ignored:
        _say_ignored(object_name, mapper.late_ignored, later=True)
    if mapper.never_seen():
        err.print(
            f"[yellow]--map names columns the file never had:[/yellow] "
            f"{escape(', '.join(mapper.never_seen()))}"
        )
    _summary(object_name, totals, options, report_path)


def _flush(
    send: Send, numbers: list[int], batch: list[dict[str, object]], totals: Totals, writer: Any
) -> None:
    answer = send(batch)
    totals.add(numbers, answer)
    write_report(writer, numbers, answer)
    numbers.clear()
    batch.clear()


def _say_ignored(object_name: str, columns: list[str], *, later: bool = False) -> None:
    where = " (found later in the file)" if later else ""
    err.print(
        f"[yellow]Ignored columns{where}, no field of {object_name} by that name:[/yellow] "
        f"{escape(', '.join(columns))}  (map one with --map 'column=field')",
        highlight=False,
    )


def _stopped(exc: BaseException, totals: Totals, options: ImportOptions) -> None:
    """Say what stopped the import and what it left written, then exit."""
    if isinstance(exc, KasarError):
        err.print(f"[red]Error[/red] ({exc.code}): {escape(exc.message)}", highlight=False)
    elif isinstance(exc, KeyboardInterrupt):
        err.print("[red]Interrupted.[/red]")
    _say_stopped(totals, options)
    if isinstance(exc, KasarError):
        raise typer.Exit(EXIT_CODES.get(exc.status, 1)) from None
    if isinstance(exc, KeyboardInterrupt):
        raise typer.Exit(130) from None
    raise exc  # unexpected: the traceback follows what was kept


def _say_stopped(totals: Totals, options: ImportOptions) -> None:
    if options.dry_run:
        err.print("Dry run: nothing was written.")
    elif totals.rows:
        err.print(
            f"Imported before the problem, and kept: {_rows(totals.rows)} (up to row "
            f"{totals.last_row:,} of the file), as counted above. Nothing after row "
            f"{totals.last_row:,} was written.",
            highlight=False,
        )
    else:
        err.print("Nothing was imported.")


def _summary(object_name: str, totals: Totals, options: ImportOptions, report: Path) -> None:
    title = f"Import into {object_name}"
    if options.dry_run:
        title += " (dry run: nothing was written)"
    table = Table("rows", "created", "duplicates", "failed", title=title)
    cells = [totals.rows, totals.created, totals.duplicates, totals.failed]
    if options.on_duplicate != "skip":
        table.add_column("updated")
        cells.append(totals.updated)
    table.add_row(*(f"{n:,}" for n in cells))
    out.print(table)
    lines = totals.duplicates + totals.failed
    out.print(
        f"Report ({_rows(lines)}: failures and duplicates): {escape(str(report))}", soft_wrap=True
    )


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"
