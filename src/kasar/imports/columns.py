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
    neither result). Other columns match a field by exact or normalised name, or
    without separators ("FirstName", "E-mail"). Then a field that no column named
    takes the first column with a usual header for it ("Company" -> ``company_name``,
    "Tel" -> ``phone``); other such columns are unmatched, not an error. A column
    whose field an override already took is unmatched; two overrides, or two
    columns naming one field, are an error.
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

    def lookup(name: str) -> str | None:
        """The field a column (or an override's target) names."""
        if name in fields:
            return name
        return by_norm.get(normalise_column_name(name)) or by_compact.get(_compact(name))

    overrides = dict(overrides or {})
    missing = [c for c in overrides if c not in columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise ValidationFailed(f"The mapping names columns not in the file: {names}", missing)
    taken: dict[str, str] = {}  # field -> column
    for column, target in overrides.items():
        field = lookup(target) if target else None
        if target and field is None:
            raise ValidationFailed(
                f"The mapping sends column '{column}' to unknown field '{target}'"
            )
        if field is not None:
            _take(taken, field, column)
    explicit = set(taken)
    rest = [c for c in columns if c not in overrides]
    for column in rest:
        field = lookup(column)
        if field is not None and field not in explicit:
            _take(taken, field, column)
    # Usual headers only for fields no column named: "Phone" and "Mobile" keep Phone.
    for column in rest:
        field = by_alias.get(_compact(column))
        if column not in taken.values() and field is not None and field not in taken:
            taken[field] = column
    by_column = {column: field for field, column in taken.items()}
    unmatched = [c for c in rest if c not in by_column]
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
