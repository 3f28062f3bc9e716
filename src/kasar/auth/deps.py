"""FastAPI dependencies: who is calling, and may they."""

from __future__ import annotations

from fastapi import Depends, Request

from kasar.auth.ratelimit import check_rate
from kasar.auth.service import User, authenticate, hash_token
from kasar.db.engine import read_transaction
from kasar.errors import PermissionDenied
from kasar.settings import get_settings
from kasar.web_common import engine_of


def current_user(request: Request) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    engine = engine_of(request)
    with read_transaction(engine) as conn:
        user = authenticate(conn, token or None)
    check_rate(engine, hash_token(token)[:32], get_settings().rate_limit_per_minute)
    request.state.user = user
    return user


def admin_user(user: User = Depends(current_user)) -> User:
    if not user.is_admin:
        raise PermissionDenied()
    return user
