"""The match keys of a record (spec §7), computed from its stored column values.

Keys are stored in ``kasar_match_keys`` (object, kind, value, record_id) so that a
duplicate look-up is an index probe whatever the size of the table. ``name`` keys
are stored for every object that has a display name: the matcher uses them for
contacts and companies, and relations use them to link by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from kasar.dedup.normalise import domain_key, email_key, linkedin_key, name_key, phone_key
from kasar.schema.model import ObjectDef
from kasar.schema.types import FieldType

STRONG_KINDS = ("email", "phone", "linkedin", "domain")


def listed(values: Mapping[str, object], column: str, list_column: str) -> list[str]:
    """The emails (or phones) of an EMAILS (PHONES) field from its stored columns: the
    JSON list in ``list_column``, else the primary value in ``column``."""
    raw = values.get(list_column)
    if isinstance(raw, str):
        if raw.count('"') == 2 and "\\" not in raw:  # '["one@example.com"]': no need to parse
            return [raw[2:-2]]
        return [i for i in json.loads(raw) if isinstance(i, str)]
    single = values.get(column)
    return [single] if isinstance(single, str) else []


def display_name(obj: ObjectDef, values: Mapping[str, object]) -> str | None:
    parts = [values.get(n) for n in obj.name_fields()]
    text = " ".join(str(p).strip() for p in parts if p not in (None, ""))
    return text or None


def match_keys_for(obj: ObjectDef, values: Mapping[str, object]) -> set[tuple[str, str]]:
    """(kind, value) pairs for one record, from its column values."""
    keys: set[tuple[str, str]] = set()
    by_type = obj.fields_by_type
    for f in by_type.get(FieldType.EMAILS, ()):
        emails = listed(values, f.column, f.list_column)
        keys.update(("email", k) for e in emails if (k := email_key(e)))
    for f in by_type.get(FieldType.PHONES, ()):
        phones = listed(values, f.column, f.list_column)
        keys.update(("phone", k) for p in phones if (k := phone_key(p)))
    for f in by_type.get(FieldType.URL, ()):
        if not isinstance(v := values.get(f.column), str):
            continue
        if f.name == "linkedin" and (k := linkedin_key(v)):
            keys.add(("linkedin", k))
        elif f.name == "domain" and obj.name == "companies" and (k := domain_key(v)):
            keys.add(("domain", k))
    name_parts = [values.get(n) for n in obj.name_fields()]
    if (k := name_key(*[p if isinstance(p, str) else None for p in name_parts])) is not None:
        keys.add(("name", k))
    return keys


def lock_names(object_name: str, keys: set[tuple[str, str]]) -> list[str]:
    return [f"{object_name}\x1f{kind}\x1f{value}" for kind, value in keys]
