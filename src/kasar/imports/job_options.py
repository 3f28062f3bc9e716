"""The options of an import job (spec §11): checked when the job is created, stored
with it, read back by the worker."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from kasar.errors import ValidationFailed
from kasar.imports.columns import match_columns
from kasar.imports.files import FORMATS
from kasar.imports.service import MATCH_KINDS, ON_DUPLICATE, ImportOptions
from kasar.schema.repository import Workspace

OPTION_KEYS = (
    "object",
    "mapping",
    "dry_run",
    "on_duplicate",
    "match_on",
    "encoding",
    "delimiter",
    "format",
)


@dataclass(frozen=True)
class ImportJobOptions:
    """What the client chose; ``filename`` comes from the upload, and ``columns``
    is filled by the worker once it has read the file's header: ``{"mapping":
    {column: field}, "unmatched": [column, ...]}``."""

    object: str
    mapping: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    on_duplicate: str = "skip"
    match_on: tuple[str, ...] = ()
    encoding: str | None = None
    delimiter: str | None = None
    format: str | None = None
    filename: str | None = None
    columns: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["match_on"] = list(self.match_on)
        return out

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> ImportJobOptions:
        values = {k: v for k, v in stored.items() if k in cls.__dataclass_fields__}
        values["match_on"] = tuple(values.get("match_on") or ())
        return cls(**values)

    def import_options(self) -> ImportOptions:
        return ImportOptions(
            dry_run=self.dry_run, on_duplicate=self.on_duplicate, match_on=self.match_on
        )

    def reader_args(self) -> dict[str, str | None]:
        return {
            "filename": self.filename,
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }


def parse_job_options(
    raw: Any, ws: Workspace, *, filename: str | None = None, extra: tuple[str, ...] = ()
) -> ImportJobOptions:
    """Check the options a client sent, in the order of spec §1: the object (400
    INVALID_OBJECT), then each option (400 VALIDATION_ERROR naming it)."""
    if not isinstance(raw, dict):
        raise ValidationFailed("The options must be a JSON object")
    name = raw.get("object")
    if not isinstance(name, str) or not name:
        raise ValidationFailed("options.object is required: the object to import into")
    obj = ws.object(name)
    unknown = sorted(set(raw) - set(OPTION_KEYS) - set(extra))
    if unknown:
        raise ValidationFailed(
            f"Unknown option '{unknown[0]}'; the options are: " + ", ".join(OPTION_KEYS)
        )
    dry_run = raw.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ValidationFailed("options.dry_run must be true or false")
    on_duplicate = raw.get("on_duplicate", "skip")
    if on_duplicate not in ON_DUPLICATE:
        raise ValidationFailed("options.on_duplicate must be one of: " + ", ".join(ON_DUPLICATE))
    match_on = raw.get("match_on") or []
    if not isinstance(match_on, list) or any(k not in MATCH_KINDS for k in match_on):
        raise ValidationFailed("options.match_on must be a list among: " + ", ".join(MATCH_KINDS))
    return ImportJobOptions(
        object=name,
        mapping=_mapping(raw.get("mapping"), obj.all_keys()),
        dry_run=dry_run,
        on_duplicate=on_duplicate,
        match_on=tuple(dict.fromkeys(match_on)),
        encoding=_encoding(raw.get("encoding")),
        delimiter=_delimiter(raw.get("delimiter")),
        format=_format(raw.get("format")),
        filename=filename,
    )


def _mapping(raw: Any, keys: list[str]) -> dict[str, str]:
    """``{column: field}``; ``""`` or null ignores the column. Targets are checked
    now; whether the columns exist is known once the file is read."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str | None) for k, v in raw.items()
    ):
        raise ValidationFailed("options.mapping must map column names to field names")
    mapping = {k: v or "" for k, v in raw.items()}
    match_columns(list(mapping), keys, mapping)
    return mapping


def _encoding(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationFailed("options.encoding must be a text encoding name such as utf-8")
    try:
        codecs.lookup(raw)
    except LookupError:
        raise ValidationFailed(f"options.encoding: unknown encoding '{raw}'") from None
    return raw


def _delimiter(raw: Any) -> str | None:
    if raw is None:
        return None
    value = {"\\t": "\t", "tab": "\t"}.get(raw.lower(), raw) if isinstance(raw, str) else None
    if value is None or len(value) != 1 or value in '"\r\n':
        raise ValidationFailed("options.delimiter must be one character (or 'tab')")
    return value


def _format(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or raw.lower() not in FORMATS:
        raise ValidationFailed("options.format must be one of: " + ", ".join(FORMATS))
    return raw.lower()
