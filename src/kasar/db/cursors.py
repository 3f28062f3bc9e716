"""The cursor of a list ordered by (created_at, id), newest first: job histories and
the duplicate review queue. Opaque to clients; a tampered one is a 400."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import orjson

from kasar.errors import ValidationFailed


def encode_cursor(stamp: datetime, last_id: str) -> str:
    raw = json.dumps([stamp.isoformat(), last_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a page resumes after."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, last_id = orjson.loads(raw)  # orjson refuses lone surrogates
        if not isinstance(last_id, str) or "\x00" in last_id:  # PostgreSQL refuses NUL
            raise ValueError("not an id")
        return datetime.fromisoformat(stamp), last_id
    except (ValueError, TypeError):
        raise ValidationFailed("Invalid cursor: pass nextCursor from the previous page") from None
