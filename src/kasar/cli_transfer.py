"""``kasar import``, ``kasar export`` and ``kasar mcp``: thin shells over the import
and export engines and the MCP server, locally (``--database-url``) or against a
server (``--server URL --token T``, through the HTTP API). The work is done in
``cli_import``, ``cli_export`` and ``cli_remote``.

Registered on the ``kasar`` app by ``kasar.cli``, whose helpers it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kasar.cli import DEFAULT_URL, DatabaseUrl, cli_errors, open_engine
from kasar.cli_export import export_format, export_local, export_remote, filters_json
from kasar.cli_import import LOCAL_BATCH, import_target, parse_map, run_import
from kasar.errors import ValidationFailed
from kasar.imports.service import ON_DUPLICATE, ImportOptions

Server = Annotated[
    str | None,
    typer.Option(
        envvar="KASAR_SERVER", help="Work through this server's API instead of a database."
    ),
]
Token = Annotated[
    str | None, typer.Option(envvar="KASAR_TOKEN", help="API token (with --server, or for mcp).")
]


def import_command(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="contacts, companies...")],
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="CSV, XLSX, JSON or NDJSON.", dir_okay=False)
    ],
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="column=field (repeatable); column= ignores the column."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would happen; write nothing.")] = False,
    on_duplicate: Annotated[
        str, typer.Option(help="skip, update (fill empty fields) or overwrite.")
    ] = "skip",
    encoding: Annotated[str | None, typer.Option(help="e.g. latin-1 (default: detected).")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: sniffed).")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Per-row report (default: FILE.report.csv).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per transaction, locally.")] = LOCAL_BATCH,
    database_url: DatabaseUrl = DEFAULT_URL,
    server: Server = None,
    token: Token = None,
) -> None:
    """Import a file of any size, streaming, in batches, with duplicate detection."""
    with cli_errors():
        if on_duplicate not in ON_DUPLICATE:
            raise ValidationFailed("--on-duplicate must be one of: " + ", ".join(ON_DUPLICATE))
        if not file.is_file():
            raise ValidationFailed(f"No such file: {file}")
        options = ImportOptions(dry_run=dry_run, on_duplicate=on_duplicate)
        overrides = parse_map(mapping)
        report_path = report or file.with_name(file.name + ".report.csv")
        with import_target(object_name, options, database_url, server, token, batch_size) as target:
            fields, send, size = target
            run_import(
                object_name,
                file,
                fields,
                send,
                size,
                overrides,
                report_path,
                options,
                encoding,
                delimiter,
            )


def export_command(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="contacts, companies...")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    format_: Annotated[
        str | None,
        typer.Option("--format", help="csv, json or ndjson (default: from -o, else json)."),
    ] = None,
    fields: Annotated[str | None, typer.Option(help="Keys in order, e.g. a,b,c.")] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            help="'field operator value', e.g. 'status eq qualified'; repeat it: all must hold.",
        ),
    ] = None,
    sort_by: Annotated[str | None, typer.Option(help="Default created_at.")] = None,
    sort_dir: Annotated[str | None, typer.Option(help="asc or desc (default).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many (default: all).")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    server: Server = None,
    token: Token = None,
) -> None:
    """Export records as CSV, JSON or NDJSON, streaming, filtered and sorted."""
    with cli_errors():
        fmt = export_format(format_, output)
        params = {
            "fields": fields,
            "filters": filters_json(filter_),
            "sort_by": sort_by,
            "sort_dir": sort_dir,
            "limit": limit,
        }
        if server:
            export_remote(server, token, object_name, fmt, output, **params)
        else:
            export_local(database_url, object_name, fmt, output, **params)


def mcp_command(token: Token = None, database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """Serve MCP over stdio for an AI assistant, as the token's user."""
    import anyio

    from kasar.mcp.server import check_token, run_stdio

    with cli_errors():
        engine = open_engine(database_url)
        check_token(engine, token)
    assert token is not None
    try:
        anyio.run(run_stdio, engine, token)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("mcp")(mcp_command)
