"""One email address checked and normalised exactly as ``email_validator`` does,
with a fast path for the common address.

``validate_email`` costs about 60 us an address (IDNA/UTS-46 checks of the domain,
character by character), a fifth of a validated import. Nearly every address is an
ASCII dot-atom local part at a domain that many addresses share, so the fast path
checks the local part with the library's own pattern and asks the library about
each domain once (cached); anything else (quoted or non-ASCII local parts, display
names, role mailboxes the library lower-cases, IP literals) goes to the library
whole. ``tests/schema/test_emails.py`` compares the two on generated addresses.
"""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DOT_ATOM_TEXT,
    EMAIL_MAX_LENGTH,
)

_ROLE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def normalise_email(text: str) -> str | None:
    """The library's normalised form of ``text`` (trimmed), or None if it is invalid."""
    text = text.strip()
    local, at, domain = text.partition("@")
    if (
        at
        and text.isascii()
        and "@" not in domain
        and DOT_ATOM_TEXT.match(local)
        and local.lower() not in _ROLE_MAILBOXES
    ):
        forms = _domain_forms(domain)
        if forms is None:
            return None
        normalised, ascii_form = forms
        longest = max(len(domain), len(normalised.encode()), len(ascii_form))
        return f"{local}@{normalised}" if len(local) + 1 + longest <= EMAIL_MAX_LENGTH else None
    return _library(text)


def _library(text: str) -> str | None:
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return str(checked.normalized)


@lru_cache(maxsize=1 << 14)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """The domain as the library writes it in a normalised address and in its ASCII
    form; None when the library refuses it (the local part cannot matter here)."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return str(checked.domain), str(checked.ascii_domain)
