"""The standard objects and the Sales Pipeline, present in every new workspace."""

from __future__ import annotations

from kasar.schema.model import FieldDef
from kasar.schema.types import FieldType as T


def _f(name: str, type_: T, **kw: object) -> FieldDef:
    label = name.replace("_", " ").capitalize()
    return FieldDef(name=name, label=label, type=type_, is_standard=True, **kw)  # type: ignore[arg-type]


STANDARD_OBJECTS: list[tuple[str, str, list[FieldDef]]] = [
    (
        "companies",
        "Companies",
        [
            _f("name", T.TEXT, required=True),
            _f("domain", T.URL),
            _f("industry", T.TEXT),
            _f("employees", T.INTEGER),
            _f("phone", T.PHONES),
            _f("linkedin", T.URL),
            _f("city", T.TEXT),
        ],
    ),
    (
        "contacts",
        "Contacts",
        [
            _f("first_name", T.TEXT, required=True),
            _f("last_name", T.TEXT),
            _f("email", T.EMAILS),
            _f("phone", T.PHONES),
            _f("linkedin", T.URL),
            _f("job_title", T.TEXT),
            _f("status", T.SELECT, options=("lead", "qualified", "customer", "churned")),
            _f("company", T.RELATION, relation="companies"),
            _f("city", T.TEXT),
            _f("notes", T.TEXTAREA),
        ],
    ),
    (
        "opportunities",
        "Opportunities",
        [
            _f("name", T.TEXT, required=True),
            _f("amount", T.CURRENCY),
            _f("status", T.SELECT, options=("open", "negotiation", "closed_won", "closed_lost")),
            _f("close_date", T.DATE),
            _f("company", T.RELATION, relation="companies"),
            _f("contact", T.RELATION, relation="contacts"),
            _f("pipeline", T.PIPELINE),
        ],
    ),
]

SALES_PIPELINE = ("opportunities", "Sales Pipeline")
SALES_STEPS = ["Qualification", "Discovery", "Proposal", "Negotiation", "Closed Won"]
