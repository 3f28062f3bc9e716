"""``GET /api/v1/me``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kasar.auth.deps import current_user
from kasar.auth.service import User
from kasar.web_common import errors

router = APIRouter(tags=["auth"])


@router.get("/me", responses=errors(401))
def me(user: User = Depends(current_user)) -> dict[str, Any]:
    """The caller: ``{userId, isAdmin, scopes, profile: {full_name, email}}``."""
    return user.me()
