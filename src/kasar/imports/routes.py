"""HTTP routes of the imports domain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["imports"])
