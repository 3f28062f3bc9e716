"""SQL functions whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import Text


class ci_lower(GenericFunction[str]):
    """Unicode-aware lower-casing: SQLite's built-in ``lower`` folds ASCII only, so
    SQLite connections register Python's ``str.lower`` as ``kasar_lower``."""

    type = Text()
    inherit_cache = True


@compiles(ci_lower, "sqlite")
def _ci_lower_sqlite(element: ci_lower, compiler: Any, **kw: Any) -> str:
    return f"kasar_lower({compiler.process(element.clauses, **kw)})"


@compiles(ci_lower)
def _ci_lower_default(element: ci_lower, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"
