"""Duplicate detection for the MCP tool ``crm_detect_duplicates``: the same engine as
``POST /api/v1/duplicates`` (``dedup.detect``), exact mode, re-exported here so that
the tool module stays a thin shell."""

from __future__ import annotations

from kasar.dedup.detect import detect_duplicates

__all__ = ["detect_duplicates"]
