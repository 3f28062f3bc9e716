"""FastAPI dependencies: who is calling, and may they."""

from __future__ import annotations

from fastapi import Depends, Request

from kasar.auth.service import User, authenticate
from kasar.db.engine import read_transaction
from kasar.errors import PermissionDenied
from kasar.web_common import engine_of


def current_user(request: Request) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    with read_transaction(engine_of(request)) as conn:
        user = authenticate(conn, token.strip() if scheme.lower() == "bearer" else None)
    request.state.user = user
    return user


def admin_user(user: User = Depends(current_user)) -> User:
    if not user.is_admin:
        raise PermissionDenied()
    return user
