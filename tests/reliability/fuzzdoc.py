"""The OpenAPI document, specialised so that a fuzzer gets past the first check.

The published document says an object name is any string and a record any JSON
object, which is true, but a fuzzer fed only that spends every example on
``INVALID_OBJECT`` and "unknown field". This copy has one path per standard object
(``/api/v1/import/contacts``, ...), with request bodies made of that object's real
keys and typed values, ids drawn from records the test seeds (and one unknown),
and the keys, operators and formats of queries as enums. Every response keeps its
documented schema.
"""

from __future__ import annotations

import copy
from typing import Any

from kasar.records.filters import ALIASES, ALL_OPS
from kasar.schema.model import FieldDef
from kasar.schema.standard import SALES_STEPS, STANDARD_OBJECTS
from kasar.schema.types import FieldType as T

OBJECTS: dict[str, list[FieldDef]] = {name: fields for name, _, fields in STANDARD_OBJECTS}
UNKNOWN_ID = "01900000-0000-7000-8000-0000000000ff"


def seeded_ids(object_name: str) -> list[str]:
    """The ids of the records ``seed_records`` creates for an object."""
    n = list(OBJECTS).index(object_name)
    return [f"01900000-0000-7000-8000-00000000{n:02d}{i:02d}" for i in range(3)]


def seed_records() -> dict[str, list[dict[str, Any]]]:
    """Import bodies that create the records whose ids ``seeded_ids`` names."""
    companies, contacts, deals = (seeded_ids(o) for o in ("companies", "contacts", "opportunities"))
    return {
        "companies": [
            {"id": companies[i], "name": f"Seed Co {i}", "domain": f"seed{i}.example"}
            for i in range(3)
        ],
        "contacts": [
            {
                "id": contacts[i],
                "first_name": f"Seed{i}",
                "last_name": "Person",
                "email": f"seed{i}@example.com",
                "company_id": companies[i],
            }
            for i in range(3)
        ],
        "opportunities": [
            {
                "id": deals[i],
                "name": f"Seed deal {i}",
                "amount": 1000 * i,
                "contact_id": contacts[i],
                "company_name": f"Seed Co {i}",
            }
            for i in range(3)
        ],
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def field_schemas(f: FieldDef) -> dict[str, dict[str, Any]]:
    """The keys one field is written through, each with the schema of a value."""
    text = {"type": "string", "maxLength": 80}
    simple: dict[T, dict[str, Any]] = {
        T.TEXT: text,
        T.TEXTAREA: {"type": "string", "maxLength": 300},
        T.NUMBER: {"type": "number"},
        T.FLOAT: {"type": "number"},
        T.CURRENCY: {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": "^-?[0-9]{1,6}(\\.[0-9]{1,2})?$"},
            ]
        },
        T.PERCENTAGE: {"type": "number"},
        T.INTEGER: {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]{1,5}$"}]},
        T.BOOLEAN: {"anyOf": [{"type": "boolean"}, {"enum": ["yes", "no", "true", "0"]}]},
        T.DATE: {"type": "string", "format": "date"},
        T.DATETIME: {"type": "string", "format": "date-time"},
        T.EMAILS: {
            "anyOf": [
                {"type": "string", "format": "email"},
                {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": 3},
                {"enum": ["seed0@example.com", "SEED1@Example.com ", "not an email"]},
            ]
        },
        T.PHONES: {
            "anyOf": [
                {"enum": ["+33 6 12 34 56 78", "06 12 34 56 79", "+14155550100", "12", "abc"]},
                {"type": "array", "items": {"enum": ["+33612345670", "0612345671"]}, "maxItems": 2},
            ]
        },
        T.URL: {
            "anyOf": [
                {
                    "enum": [
                        "https://www.linkedin.com/in/seed-0",
                        "seed1.example",
                        "http://x.io/a?b=c",
                    ]
                },
                text,
            ]
        },
        T.SELECT: {"anyOf": [{"enum": list(f.options)}, text]},
        T.MULTI_SELECT: {"type": "array", "items": {"enum": list(f.options) or ["a"]}},
        T.ADDRESS: {"type": "object", "properties": {"city": text, "country": text}},
    }
    if f.type is T.RELATION:
        assert f.relation is not None
        ids = {"enum": [*seeded_ids(f.relation), UNKNOWN_ID]}
        return {f"{f.name}_id": _nullable(ids), f"{f.name}_name": _nullable(text)}
    if f.type is T.PIPELINE:
        steps = {"anyOf": [{"enum": SALES_STEPS}, text]}
        return {f.name: _nullable({"enum": ["Sales Pipeline", "Other"]}), f"{f.name}_step": steps}
    return {f.name: _nullable(simple[f.type])}


def record_schema(object_name: str, *, partial: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for f in OBJECTS[object_name]:
        properties.update(field_schemas(f))
    if object_name == "contacts":
        properties["company_name"] = _nullable({"enum": ["Seed Co 0", "New Co", "SEED CO 1"]})
    required = [f.name for f in OBJECTS[object_name] if f.required and not partial]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **({"minProperties": 1} if partial else {}),
    }


def _keys(object_name: str) -> list[str]:
    keys = ["id"]
    for f in OBJECTS[object_name]:
        keys += list(f.keys())
    return [*keys, "created_at", "updated_at"]


def _query_schema(name: str, object_name: str) -> dict[str, Any] | None:
    keys = _keys(object_name)
    return {
        "sort_by": {"enum": keys},
        "filter_field": {"enum": keys},
        "filter_operator": {"enum": sorted(ALL_OPS | set(ALIASES))},
        "sort_dir": {"enum": ["asc", "desc", "ASC"]},
        "format": {"enum": ["json", "csv", "CSV"]},
        "fields": {"enum": [",".join(keys[:3]), ",".join(reversed(keys)), keys[1]]},
    }.get(name)


def _specialise(path: str, ops: dict[str, Any], object_name: str) -> dict[str, Any]:
    ops = copy.deepcopy(ops)
    for method, op in ops.items():
        op["operationId"] = f"{op.get('operationId', method + path)}_{object_name}"
        params = [p for p in op.get("parameters", []) if p["name"] != "object_name"]
        for p in params:
            if p["name"] == "record_id":
                p["schema"] = {"enum": [*seeded_ids(object_name), UNKNOWN_ID]}
            elif p["in"] == "query" and (schema := _query_schema(p["name"], object_name)):
                p["schema"] = schema
        op["parameters"] = params
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        if path.startswith("/api/v1/records/"):
            content["schema"] = record_schema(object_name, partial=method == "patch")
        elif path.startswith("/api/v1/import/"):
            content["schema"] = {
                "type": "object",
                "required": ["records"],
                "additionalProperties": False,
                "properties": {
                    "records": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 8,
                        "items": record_schema(object_name),
                    }
                },
            }
    return ops


def fuzz_document(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with each ``{object_name}`` path made concrete per standard object."""
    out = copy.deepcopy(document)
    paths: dict[str, Any] = {}
    for path, ops in document["paths"].items():
        if "{object_name}" not in path:
            paths[path] = ops
            continue
        for name in OBJECTS:
            paths[path.replace("{object_name}", name)] = _specialise(path, ops, name)
    out["paths"] = paths
    return out
