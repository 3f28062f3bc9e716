"""The ``kasar`` command: a thin shell that parses, calls the library, prints."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select

from kasar.auth import service as auth
from kasar.db import tables
from kasar.db.engine import make_engine, read_transaction, write_transaction
from kasar.db.migrate import upgrade
from kasar.errors import KasarError

app = typer.Typer(help="Kasar's data service.", no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

err = Console(stderr=True)
out = Console()
T = TypeVar("T")

DEFAULT_URL = "sqlite:///kasar.db"
DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="KASAR_DATABASE_URL",
        help="SQLite file or postgresql:// URL.",
        show_default=True,
    ),
]
EXIT_CODES = {400: 2, 401: 3, 403: 3, 404: 4, 409: 5, 413: 2, 429: 6}


@contextmanager
def cli_errors() -> Iterator[None]:
    """KasarError -> one message on stderr and an exit code by kind."""
    try:
        yield
    except KasarError as exc:
        err.print(f"[red]Error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(EXIT_CODES.get(exc.status, 1)) from None


def open_engine(database_url: str) -> Engine:
    engine = make_engine(database_url)
    upgrade(engine)
    return engine


def run_write(database_url: str, fn: Callable[[Any], T]) -> T:
    with cli_errors():
        engine = open_engine(database_url)
        try:
            with write_transaction(engine) as conn:
                return fn(conn)
        finally:
            engine.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Number of server processes.")] = 1,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Create or migrate the database, then serve the API (and /docs)."""
    import uvicorn

    with cli_errors():
        engine = open_engine(database_url)
        with read_transaction(engine) as conn:
            has_admin = conn.execute(
                select(tables.users.c.id).where(tables.users.c.role == "admin").limit(1)
            ).first()
        engine.dispose()
    if not has_admin:
        kasar = os.path.join(os.path.dirname(sys.executable), "kasar")
        err.print(
            "[yellow]No admin user yet.[/yellow] To get an admin token, run in another terminal:\n"
            f"  {kasar} users create you@example.com --role admin\n"
            f"  {kasar} tokens create you@example.com\n"
            "(the token is the last line it prints)"
        )
    os.environ["KASAR_DATABASE_URL"] = database_url
    err.print(f"Kasar on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "kasar.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        log_level="info",
    )


@app.command()
def worker(
    poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 1.0,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Run queued import and export jobs until stopped (any number may run at once)."""
    import signal
    import threading

    from kasar.jobs.runtime import run_worker

    with cli_errors():
        engine = open_engine(database_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    err.print("Worker started; Ctrl-C to stop.")
    run_worker(engine, stop, poll_seconds=poll)
    engine.dispose()


@app.command()
def migrate(database_url: DatabaseUrl = DEFAULT_URL) -> None:
    """Create or migrate the database and exit."""
    with cli_errors():
        open_engine(database_url).dispose()
    out.print("Database is up to date.")


@users_app.command("create")
def users_create(
    email: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Create a user."""
    user = run_write(database_url, lambda c: auth.create_user(c, email, name=name, role=role))
    out.print(f"Created {user.role} {user.email} ({user.id})")


@tokens_app.command("create")
def tokens_create(
    email: str,
    name: Annotated[str | None, typer.Option(help="A name to recognise the token by.")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Create a token; it is printed once, alone on the last line."""
    token = run_write(
        database_url, lambda c: auth.create_token(c, auth.get_user_by_email(c, email), name=name)
    )
    out.print(f"Token for {email} (shown once; keep it safe):", highlight=False)
    print(token)


@tokens_app.command("list")
def tokens_list(
    email: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Each token's prefix, owner, name and state (never the secret)."""
    rows = run_write(database_url, lambda c: auth.list_tokens(c, email))
    table = Table("prefix", "owner", "name", "state", "created")
    for t in rows:
        table.add_row(
            t.prefix, t.user_email, t.name, t.state, t.created_at.isoformat(timespec="seconds")
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token: Annotated[str, typer.Argument(help="The token, or the prefix that `list` shows.")],
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Revoke a token."""
    run_write(database_url, lambda c: auth.revoke_token(c, token))
    out.print("Revoked.")


# import, export and mcp live in cli_transfer, which uses the helpers above.
from kasar import cli_transfer  # noqa: E402

cli_transfer.register(app)

if __name__ == "__main__":
    app()
