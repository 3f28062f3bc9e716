"""Column names of import files: checking a header, and mapping columns to fields
by name (case-, space- and accent-insensitive) with the caller's overrides."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from kasar.errors import ValidationFailed


def normalise_column_name(name: str) -> str:
    """``" Prénom-Nom.2 "`` -> ``"prenom_nom_2"``: lower case, no accents, ``_`` separators."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[\s.\-_]+", "_", text).strip("_")


# Headers that CRM exports and spreadsheets use for standard keys, compared in their
# compact form (normalised, separators dropped: "E-mail Address" -> "emailaddress").
# Used only for a key the object has, when no key has the column's own name.
_ALIASES = {
    "email": ("email", "mail", "emailaddress", "mailaddress", "courriel"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cellphone"),
    "first_name": ("firstname", "givenname", "prenom"),
    "last_name": ("lastname", "surname", "familyname", "nom"),
    "company_name": ("company", "companyname", "organization", "organisation", "account"),
    "job_title": ("jobtitle", "title", "position"),
    "linkedin": ("linkedin", "linkedinurl", "linkedinprofile"),
}


def _compact(name: str) -> str:
    return normalise_column_name(name).replace("_", "")


def match_columns(
    columns: Sequence[str],
    field_names: Sequence[str],
    overrides: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Map file columns to fields: ``(column -> field, unmatched columns)``.

    An override ``{column: field}`` wins; ``""`` ignores the column (it is then in
    neither result). Other columns match a field by exact or normalised name, then
    without separators ("FirstName", "E-mail"), then by a usual header for a
    standard key ("Company" -> ``company_name``, "Tel" -> ``phone``). A
    column whose field an override already took is unmatched; two overrides, or two
    matched columns, for one field are an error.
    """
    fields = set(field_names)
    by_norm: dict[str, str] = {}
    by_compact: dict[str, str] = {}
    for name in field_names:
        by_norm.setdefault(normalise_column_name(name), name)
        by_compact.setdefault(_compact(name), name)
    by_alias = {
        alias: key for key, aliases in _ALIASES.items() if key in fields for alias in aliases
    }

    def lookup(name: str, *, aliases: bool = True) -> str | None:
        """The field a column (or, without aliases, an override's target) names."""
        if name in fields:
            return name
        found = by_norm.get(normalise_column_name(name)) or by_compact.get(_compact(name))
        return found or (by_alias.get(_compact(name)) if aliases else None)

    overrides = dict(overrides or {})
    missing = [c for c in overrides if c not in columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ValidationFailed(f"The mapping names columns not in the file: {names}", missing)
    taken: dict[str, str] = {}  # field -> column
    for column, target in overrides.items():
        field = lookup(target, aliases=False) if target else None
        if target and field is None:
            raise ValidationFailed(
                f"The mapping sends column '{column}' to unknown field '{target}'"
            )
        if field is not None:
            _take(taken, field, column)
    explicit = set(taken)
    unmatched = []
    for column in columns:
        if column in overrides:
            continue
        field = lookup(column)
        if field is None or field in explicit:
            unmatched.append(column)
        else:
            _take(taken, field, column)
    by_column = {column: field for field, column in taken.items()}
    return {c: by_column[c] for c in columns if c in by_column}, unmatched


def _take(taken: dict[str, str], field: str, column: str) -> None:
    if field in taken:
        raise ValidationFailed(
            f"Columns '{taken[field]}' and '{column}' both map to field '{field}'",
            {"field": field, "columns": [taken[field], column]},
        )
    taken[field] = column


def check_header(names: list[str]) -> list[str]:
    """The header's names, trimmed; an empty or repeated (case-insensitively) name is an error."""
    names = [n.strip() for n in names]
    if names:
        names[0] = names[0].lstrip("\ufeff").strip()
    empty = [i for i, n in enumerate(names, 1) if not n]
    if empty:
        raise ValidationFailed(
            f"The header has no name for column {', '.join(map(str, empty))}", {"columns": empty}
        )
    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault(name.casefold(), []).append(name)
    repeated = [group for group in seen.values() if len(group) > 1]
    if repeated:
        text = "; ".join(", ".join(group) for group in repeated)
        raise ValidationFailed(f"The header repeats column names: {text}", {"repeated": repeated})
    return names
