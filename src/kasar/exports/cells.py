"""Spreadsheet formula protection for exported text cells (spec §8).

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula, so exports prefix such cells with ``'``. Plain numbers
(``-5``, ``+33612345678``) are left alone. ``unprotect_cell`` is the exact inverse,
used by Kasar's own readers so that an exported file imports back unchanged.

To stay invertible, the rule is applied to any run of quotes before a trigger: a
cell matching ``'*`` + trigger gets one more ``'``, and unprotect removes one ``'``
from a cell matching ``'+`` + trigger. (With only ``'`` + trigger, the user text
``''=x`` would be left alone by protect but shortened by unprotect.)
"""

from __future__ import annotations

import re

TRIGGERS = frozenset("=+-@\t\r")

_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _quotes_then_trigger(text: str) -> bool:
    """True when ``text`` is zero or more ``'`` followed by a trigger character."""
    return text.lstrip("'")[:1] in TRIGGERS


def is_plain_number(text: str) -> bool:
    """An optional sign, ASCII digits and an optional decimal part, nothing else."""
    return _PLAIN_NUMBER.fullmatch(text) is not None


def protect_cell(text: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would run as a formula."""
    if not text or (text[0] not in TRIGGERS and text[0] != "'"):
        return text
    if _quotes_then_trigger(text) and not is_plain_number(text):
        return "'" + text
    return text


def unprotect_cell(text: str) -> str:
    """Remove the one ``'`` that ``protect_cell`` added, and nothing else."""
    if text[:1] == "'" and _quotes_then_trigger(text[1:]):
        return text[1:]
    return text
