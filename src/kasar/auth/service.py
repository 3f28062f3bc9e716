"""Users and API tokens. Tokens are shown once and stored only as a SHA-256 hash.

A token is ``ksr_`` and 43 random URL-safe characters (256 bits); with that much
entropy a fast hash is the right one (no brute force to slow down), and it lets a
look-up use a unique index.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, insert, or_, select, update

from kasar.db import tables
from kasar.db.ids import new_id
from kasar.errors import NotFound, Unauthenticated, ValidationFailed
from kasar.schema.repository import now_utc

TOKEN_PREFIX = "ksr_"
ROLES = ("admin", "member")


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: str
    active: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def me(self) -> dict[str, object]:
        scopes = ["records:read", "records:write"]
        if self.is_admin:
            scopes += ["import", "export", "schema:write", "duplicates", "jobs"]
        return {
            "userId": self.id,
            "isAdmin": self.is_admin,
            "scopes": scopes,
            "profile": {"full_name": self.name, "email": self.email},
        }


@dataclass(frozen=True)
class TokenInfo:
    id: str
    prefix: str
    name: str
    user_email: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at else "active"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: object) -> User:
    return User(row.id, row.email, row.name, row.role, row.active)  # type: ignore[attr-defined]


def create_user(
    conn: Connection, email: str, *, name: str | None = None, role: str = "member"
) -> User:
    if role not in ROLES:
        raise ValidationFailed(f"Role must be one of: {', '.join(ROLES)}")
    try:
        email = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed(f"'{email}' is not a valid email address: {exc}") from None
    exists = conn.execute(select(tables.users.c.id).where(tables.users.c.email == email)).first()
    if exists:
        raise ValidationFailed(f"A user with email '{email}' already exists")
    user = User(new_id(), email, name or email.split("@")[0], role, True)
    conn.execute(
        insert(tables.users).values(
            id=user.id,
            email=user.email,
            name=user.name,
            role=role,
            active=True,
            created_at=now_utc(),
        )
    )
    return user


def get_user_by_email(conn: Connection, email: str) -> User:
    row = conn.execute(select(tables.users).where(tables.users.c.email == email.strip())).first()
    if row is None:
        raise NotFound(f"No user with email '{email}'")
    return _user(row)


def create_token(conn: Connection, user: User, *, name: str | None = None) -> str:
    """Create a token for the user and return it: the only time it is ever seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(tables.tokens).values(
            id=new_id(),
            user_id=user.id,
            name=name or "default",
            prefix=token[:12],
            token_hash=hash_token(token),
            created_at=now_utc(),
        )
    )
    return token


def authenticate(conn: Connection, token: str | None) -> User:
    """The active user behind a token; one and the same error for every failure."""
    if not token or not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated()
    row = conn.execute(
        select(tables.users)
        .join(tables.tokens, tables.tokens.c.user_id == tables.users.c.id)
        .where(
            tables.tokens.c.token_hash == hash_token(token),
            tables.tokens.c.revoked_at.is_(None),
            tables.users.c.active.is_(True),
        )
    ).first()
    if row is None:
        raise Unauthenticated()
    return _user(row)


def list_tokens(conn: Connection, email: str | None = None) -> list[TokenInfo]:
    t, u = tables.tokens, tables.users
    query = (
        select(
            t.c.id,
            t.c.prefix,
            t.c.name,
            u.c.email,
            t.c.created_at,
            t.c.revoked_at,
            t.c.last_used_at,
        )
        .join(u, u.c.id == t.c.user_id)
        .order_by(t.c.created_at, t.c.id)
    )
    if email:
        query = query.where(u.c.email == email.strip())
    return [TokenInfo(*row) for row in conn.execute(query)]


def revoke_token(conn: Connection, token_or_prefix: str) -> int:
    """Revoke by the token itself or by the prefix that ``list`` shows."""
    value = token_or_prefix.strip()
    if len(value) < 8:
        raise ValidationFailed("Give the token or its prefix (at least 8 characters)")
    t = tables.tokens
    match = or_(t.c.token_hash == hash_token(value), t.c.prefix == value)
    ids = [r.id for r in conn.execute(select(t.c.id).where(match))]
    if not ids:
        raise NotFound("No token matches that value")
    if len(ids) > 1:
        raise ValidationFailed("That prefix matches several tokens; give the token itself")
    conn.execute(
        update(t).where(t.c.id.in_(ids), t.c.revoked_at.is_(None)).values(revoked_at=now_utc())
    )
    return len(ids)
