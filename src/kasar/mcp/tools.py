"""The MCP tools: thin shells over the import, export, records and duplicate engines.

Each tool parses its arguments the way the REST route does, calls the library in a
transaction it owns, and returns the same JSON as the route. Errors carry the REST
codes: a tool error's text is ``{"code": ..., "message": ...}``. The caller (set by
``server``'s middleware for each message) is read from ``caller``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any, ParamSpec, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.exc import DataError

from kasar.auth.service import User
from kasar.db.engine import read_transaction, snapshot_transaction, write_transaction
from kasar.dedup.detect import detect_duplicates
from kasar.errors import KasarError, PermissionDenied, Unauthenticated, ValidationFailed
from kasar.exports.service import count_total, parse_format, parse_request
from kasar.exports.writers import write_csv, write_json
from kasar.imports.service import ON_DUPLICATE, ImportOptions, import_records
from kasar.records import service as records
from kasar.records.filters import parse_filters
from kasar.records.query import RecordQuery, parse_keys, parse_sort
from kasar.schema.repository import load_workspace
from kasar.settings import get_settings

log = logging.getLogger("kasar.mcp")
caller: ContextVar[User | None] = ContextVar("kasar_mcp_caller", default=None)
P = ParamSpec("P")
R = TypeVar("R")


def _arg(description: str, **schema: Any) -> Any:
    """A described argument; ``schema`` adds JSON-schema hints (enum, minimum...) that
    are documented, not enforced by the SDK, so a bad value gets the REST error."""
    return Field(description=description, json_schema_extra=schema or None)


ObjectArg = Annotated[
    str,
    _arg(
        "The object, e.g. 'contacts', 'companies', 'opportunities' or a custom object "
        "(the resource kasar://schema lists them)."
    ),
]
FieldsArg = Annotated[
    list[str] | None,
    _arg(
        "Keys to return, in this order, e.g. ['first_name', 'email', 'company_name']. "
        "Default: every key. The resource kasar://schema/{object} lists the fields."
    ),
]
FiltersArg = Annotated[
    dict[str, Any] | None,
    _arg(
        'A FilterGroup: {"operator": "and" | "or", "conditions": [{"field": "status", '
        '"operator": "eq", "value": "qualified"}, ...]}; a condition may itself be a group. '
        "Operators: eq, neq, gt, gte, lt, lte, contains, not_contains, starts_with, "
        "ends_with (text is compared case-insensitively), in, not_in (value: a list or "
        "comma-separated text), is_null, is_not_null (no value), date_before, date_after. "
        "Use either this or filter_field/filter_operator/filter_value."
    ),
]
FilterFieldArg = Annotated[str | None, _arg("Simple filter: the field.")]
FilterOpArg = Annotated[str | None, _arg("Simple filter: the operator, e.g. 'eq', 'contains'.")]
FilterValueArg = Annotated[
    str | None, _arg("Simple filter: the value (none for is_null and is_not_null).")
]
SortByArg = Annotated[str | None, _arg("The key to sort on; default 'created_at'.")]
SortDirArg = Annotated[str, _arg("'asc' or 'desc' (the default).", enum=["asc", "desc"])]
RecordsArg = Annotated[
    list[dict[str, Any]],
    _arg(
        "1 to 50 records, each a map of field name to value, e.g. "
        '[{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", '
        '"company_name": "Acme"}].',
        minItems=1,
        maxItems=50,
    ),
]
DryRunArg = Annotated[bool, _arg("Report what would happen and write nothing.")]
OnDuplicateArg = Annotated[
    str,
    _arg(
        "What a duplicate does to the stored record: 'skip' (the default) leaves it alone, "
        "'update' fills its empty fields, 'overwrite' replaces the fields the duplicate gives.",
        enum=list(ON_DUPLICATE),
    ),
]
FormatArg = Annotated[str, _arg("'json' (the default) or 'csv'.", enum=["json", "csv"])]
ExportLimitArg = Annotated[int, _arg("How many records, 1 to 10000.", minimum=1, maximum=10000)]
PageLimitArg = Annotated[int, _arg("Page size, 1 to 100.", minimum=1, maximum=100)]
CursorArg = Annotated[str | None, _arg("nextCursor of the previous page (same sort).")]
GroupLimitArg = Annotated[
    int, _arg("At most this many groups, 1 to 1000.", minimum=1, maximum=1000)
]


def tool_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Any failure becomes a tool error whose text is the REST error body."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KasarError as exc:
            body = exc.to_body()
        except DataError:
            body = {
                "code": "VALIDATION_ERROR",
                "message": "A value is out of range or not storable",
            }
        except Exception:
            log.exception("MCP tool %s failed", fn.__name__)
            body = {"code": "INTERNAL_ERROR", "message": "Internal error"}
        raise ToolError(json.dumps(body, ensure_ascii=False))

    return wrapper


def current_user(*, admin: bool = False) -> User:
    user = caller.get()
    if user is None:
        raise Unauthenticated()
    if admin and not user.is_admin:
        raise PermissionDenied()
    return user


def _encoded(filters: dict[str, Any] | None) -> str | None:
    return None if filters is None else json.dumps(filters)


def _joined(fields: list[str] | None) -> str | None:
    return ",".join(fields) if fields else None


def register_tools(server: MCPServer, engine: Engine) -> None:
    @server.tool(
        "crm_import",
        description="Import 1 to 50 records into an object (admin only), with exact "
        "duplicate detection on email, phone, LinkedIn and name. Field names are those of "
        "kasar://schema/{object}. A bad record fails alone; a duplicate is not created. "
        "Answers {created, duplicates, failed, errors, results}.",
    )
    @tool_errors
    def crm_import(
        object: ObjectArg,
        records: RecordsArg,
        dry_run: DryRunArg = False,
        on_duplicate: OnDuplicateArg = "skip",
    ) -> dict[str, Any]:
        current_user(admin=True)
        cap = get_settings().import_batch_max
        if not 1 <= len(records) <= cap:
            raise ValidationFailed(
                f"'records' must hold 1 to {cap} records; it holds {len(records)}"
            )
        if on_duplicate not in ON_DUPLICATE:
            raise ValidationFailed("on_duplicate must be one of: " + ", ".join(ON_DUPLICATE))
        options = ImportOptions(dry_run=dry_run, on_duplicate=on_duplicate)
        with write_transaction(engine) as conn:
            return import_records(conn, load_workspace(conn), object, records, options).to_api()

    @server.tool(
        "crm_export",
        description="Export an object's records, filtered and sorted, as JSON records or CSV "
        "text (admin only); the parameters of GET /api/v1/export/{object}, default limit "
        "500. 'total' counts every matching record, even beyond the limit.",
    )
    @tool_errors
    def crm_export(
        object: ObjectArg,
        format: FormatArg = "json",
        fields: FieldsArg = None,
        filters: FiltersArg = None,
        filter_field: FilterFieldArg = None,
        filter_operator: FilterOpArg = None,
        filter_value: FilterValueArg = None,
        sort_by: SortByArg = None,
        sort_dir: SortDirArg = "desc",
        limit: ExportLimitArg = 500,
    ) -> dict[str, Any]:
        current_user(admin=True)
        with snapshot_transaction(engine) as conn:
            ws = load_workspace(conn)
            req = parse_request(
                ws,
                object,
                fields=_joined(fields),
                filter_field=filter_field,
                filter_operator=filter_operator,
                filter_value=filter_value,
                filters=_encoded(filters),
                sort_by=sort_by,
                sort_dir=sort_dir,
                limit=limit,
            )
            if parse_format(format) == "json":
                answer: dict[str, Any] = json.loads(b"".join(write_json(conn, ws, req)))
                return answer
            text = b"".join(write_csv(conn, ws, req)).decode()
            return {"format": "csv", "csv": text, "total": count_total(conn, ws, req)}

    @server.tool(
        "crm_find_records",
        description="List an object's records, filtered, sorted and paged (any user). "
        "Answers {data, total, nextCursor}; pass nextCursor back as 'cursor', with the "
        "same sort, for the next page.",
    )
    @tool_errors
    def crm_find_records(
        object: ObjectArg,
        filters: FiltersArg = None,
        filter_field: FilterFieldArg = None,
        filter_operator: FilterOpArg = None,
        filter_value: FilterValueArg = None,
        sort_by: SortByArg = None,
        sort_dir: SortDirArg = "desc",
        limit: PageLimitArg = 20,
        cursor: CursorArg = None,
        fields: FieldsArg = None,
    ) -> dict[str, Any]:
        current_user()
        if not 1 <= limit <= 100:
            raise ValidationFailed("limit must be between 1 and 100")
        with read_transaction(engine) as conn:
            ws = load_workspace(conn)
            obj = ws.object(object)
            keys = parse_keys(obj, _joined(fields), records.default_keys(obj))
            key, direction = parse_sort(obj, sort_by, sort_dir)
            group = parse_filters(filter_field, filter_operator, filter_value, _encoded(filters))
            query = RecordQuery(keys, group, key, direction)
            page = records.list_records(conn, ws, object, query, limit=limit, cursor=cursor)
            return page.to_api()

    @server.tool(
        "crm_detect_duplicates",
        description="Find groups of stored records of an object that duplicate each other "
        "by the import's rules: a shared email, phone, LinkedIn or company domain, or the "
        "same name without conflicting emails or phones (admin only). Answers "
        "{duplicate_groups: [{records, matched_on}], total_groups}.",
    )
    @tool_errors
    def crm_detect_duplicates(
        object: ObjectArg, fields: FieldsArg = None, limit: GroupLimitArg = 50
    ) -> dict[str, Any]:
        current_user(admin=True)
        if not 1 <= limit <= 1000:
            raise ValidationFailed("limit must be between 1 and 1000")
        with read_transaction(engine) as conn:
            ws = load_workspace(conn)
            obj = ws.object(object)
            keys = parse_keys(obj, _joined(fields), records.default_keys(obj))
            return detect_duplicates(conn, ws, object, keys=keys, limit=limit)
