"""One email address checked and normalised exactly as ``email_validator`` does,
with a fast path for the common address.

``validate_email`` costs about 60 us an address (IDNA/UTS-46 checks of the domain,
character by character, and the search for a display name), a fifth of a validated
import. Nearly every address is a dot-atom local part (ASCII, or with accents:
"chloé.martin@") at a domain that many addresses share, so the fast path checks the
local part with the library's own patterns and checks, and asks the library about
each domain once (cached); anything else (quoted local parts, display names, role
mailboxes the library lower-cases, local parts not in NFC, IP literals) goes to the
library whole. ``tests/schema/test_emails.py`` compares the two on generated
addresses.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DOT_ATOM_TEXT,
    DOT_ATOM_TEXT_INTL,
    EMAIL_MAX_LENGTH,
)
from email_validator.syntax import check_unsafe_chars

_ROLE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def normalise_email(text: str) -> str | None:
    """The library's normalised form of ``text`` (trimmed), or None if it is invalid."""
    text = text.strip()
    local, at, domain = text.partition("@")
    if at and "@" not in domain and _plain_local(local):
        forms = _domain_forms(domain)
        if forms is None:
            return None
        normalised, ascii_form = forms
        # The library's length limit, in UTF-8 bytes, on each form of the address.
        longest = max(len(domain.encode()), len(normalised.encode()), len(ascii_form))
        fits = len(local.encode()) + 1 + longest <= EMAIL_MAX_LENGTH
        return f"{local}@{normalised}" if fits else None
    return _library(text)


def _plain_local(local: str) -> bool:
    """Whether the library would keep this local part as it is: an ASCII dot-atom
    that is no role mailbox, or an internationalised dot-atom in NFC made of safe
    characters (the library's own ``check_unsafe_chars``)."""
    if local.isascii():
        return bool(DOT_ATOM_TEXT.match(local)) and local.lower() not in _ROLE_MAILBOXES
    if not DOT_ATOM_TEXT_INTL.match(local) or not unicodedata.is_normalized("NFC", local):
        return False
    try:
        check_unsafe_chars(local)
        local.encode()
    except (EmailNotValidError, UnicodeError):
        return False
    return True


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
