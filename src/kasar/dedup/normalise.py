"""Match key normalisers for duplicate detection (spec §7).

Each function maps one written form of an email, phone, LinkedIn profile, name or
domain to the key that two duplicates share, or None when there is nothing to match
on. Every function is idempotent: a key normalises to itself. Keys fit the match-key
column (``MAX_KEY_CHARS``): a longer one keeps its start and ends with a digest of
the whole, so that equal keys stay equal and different ones stay different.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from urllib.parse import SplitResult, unquote, urlsplit

import idna  # a dependency of email-validator; IDNA 2008 with UTS #46 mapping

__all__ = ["domain_key", "email_key", "linkedin_key", "name_key", "phone_key"]

# LinkedIn pages that name one person or organisation in their second path segment.
LINKEDIN_KINDS = frozenset({"in", "company", "school", "showcase"})
# Characters that end a URL component; a decoded slug containing one cannot round-trip.
_SLUG_FORBIDDEN = frozenset("/?#%@:\\")
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_MAX_HOST_CHARS = 253  # the longest domain name DNS allows
MAX_KEY_CHARS = 400  # the width of kasar_match_keys.value (VARCHAR(400) on PostgreSQL)


def _bounded(key: str | None) -> str | None:
    """``key``, or for a longer one its start, ``~`` and the SHA-256 of the whole."""
    if key is None or len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: MAX_KEY_CHARS - len(digest) - 1]}~{digest}"


def _fold(text: str) -> str:
    """NFKC + case folding, done twice so that the result is stable under itself."""
    for _ in range(2):
        text = unicodedata.normalize("NFKC", text.casefold())
    return unicodedata.normalize("NFKC", text)


def _split_url(text: str) -> SplitResult:
    """`text` split as a URL, read as "//host/..." when it has no scheme."""
    has_host = _HAS_SCHEME.match(text) or text.startswith("//")
    return urlsplit(text if has_host else "//" + text)


# The keys are pure functions of their text, asked for several times per record in
# an import (validation, matching, storing, linking by name: ``name_key`` ran about
# 7 times a row, 11% of an import's time) and names repeat: a cache of recent
# answers each.
_CACHE_SIZE = 1 << 14


@lru_cache(maxsize=_CACHE_SIZE)
def email_key(email: str) -> str | None:
    """The email trimmed, NFKC-normalised and case-folded; None if empty."""
    key = _fold(email.strip()).strip()
    return _bounded(key or None)


def phone_key(e164: str) -> str | None:
    """A phone already in E.164 as its digits behind one '+'; None if it has no digits."""
    if e164[:1] == "+" and e164[1:].isdigit() and e164[1:].isascii():
        return e164  # what every stored phone is
    digits = "".join(c for c in e164 if c in "0123456789")
    return "+" + digits if digits else None


@lru_cache(maxsize=_CACHE_SIZE)
def name_key(*parts: str | None) -> str | None:
    """The non-empty parts joined, without case, accents or extra whitespace.

    "  Éloïse   DURAND " and "eloise durand" have the same key. Punctuation is kept:
    "Jean-Pierre" and "Jean Pierre" are different keys.
    """
    text = " ".join(part for part in parts if part and part.strip())
    # Case folding can add combining marks ("İ" -> "i̇"), so accents go after it.
    text = unicodedata.normalize("NFKD", _fold(unicodedata.normalize("NFKD", text)))
    text = "".join(c for c in text if not unicodedata.combining(c))
    key = " ".join(text.split())
    return _bounded(key or None)


def linkedin_key(value: str) -> str | None:
    """The profile or page a LinkedIn URL or vanity name points to: "in/john-doe".

    URLs of any linkedin.com host, with or without scheme, query or trailing path,
    vanity names ("john-doe", "@john-doe") and keys themselves are recognised;
    anything else (another site, a short link, a name with spaces) gives None.
    """
    text = value.strip()
    if not text:
        return None
    if text.startswith("@"):
        return _linkedin_slug("in", text[1:])
    head, _, rest = text.lstrip("/").partition("/")
    if head.casefold() in LINKEDIN_KINDS and rest:
        return _linkedin_path(text.split("?")[0].split("#")[0])
    if not any(c in text for c in "/.:"):
        return _linkedin_slug("in", text)
    try:
        url = _split_url(text)
        host = url.hostname
    except ValueError:
        return None
    if url.scheme.casefold() not in ("", "http", "https") or host is None:
        return None
    host = host.rstrip(".")
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        return None
    return _linkedin_path(url.path)


def _linkedin_path(path: str) -> str | None:
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) < 2 or segments[0].casefold() not in LINKEDIN_KINDS:
        return None
    return _linkedin_slug(segments[0].casefold(), segments[1])


def _linkedin_slug(kind: str, raw_slug: str) -> str | None:
    slug = _fold(unquote(raw_slug))
    if not slug or any(c in _SLUG_FORBIDDEN or not c.isprintable() or c.isspace() for c in slug):
        return None
    return _bounded(f"{kind}/{slug}")


def domain_key(value: str) -> str | None:
    """The host of a domain or website, lowercase ASCII, without "www.": "acme.com".

    Scheme, userinfo, port, path, query and trailing dot are dropped (so an email
    address gives its domain); non-ASCII names are IDNA-encoded. None when empty, when
    there is no dot, or when the host cannot be a domain name (longer than 253 characters).
    """
    text = value.strip()
    if not text:
        return None
    try:
        host = _split_url(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    host = host.lower().rstrip(".")
    if any(c.isspace() or not c.isprintable() or c in ":[]" for c in host):
        return None
    # Repeated, so that the key of "www.www.acme.com" is stable; "www.com" is kept.
    while host.startswith("www.") and "." in host[4:]:
        host = host[4:]
    return host if "." in host and len(host) <= _MAX_HOST_CHARS else None
