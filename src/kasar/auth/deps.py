"""FastAPI dependencies: who is calling, and may they."""

from __future__ import annotations

from fastapi import Depends, Request

from kasar.auth.ratelimit import check_rate, count_hit, enforce
from kasar.auth.service import User, authenticate, hash_token
from kasar.db.engine import is_sqlite, read_transaction, write_transaction
from kasar.errors import PermissionDenied
from kasar.settings import get_settings
from kasar.web_common import engine_of


def current_user(request: Request) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    engine = engine_of(request)
    limit = get_settings().rate_limit_per_minute
    subject = hash_token(token)[:32]
    if is_sqlite(engine):
        with read_transaction(engine) as conn:
            user = authenticate(conn, token or None)
        check_rate(engine, subject, limit)
    else:
        # One transaction for both: every round trip counts on a small request.
        with write_transaction(engine) as conn:
            user = authenticate(conn, token or None)
            hits = count_hit(conn, subject) if limit > 0 else 0  # 0: no limit, no count
        enforce(hits, limit)
    request.state.user = user
    return user


async def admin_user(user: User = Depends(current_user)) -> User:
    # async: no I/O here, so no hop to a worker thread and back
    if not user.is_admin:
        raise PermissionDenied()
    return user
