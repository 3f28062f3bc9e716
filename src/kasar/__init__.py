"""Kasar's data service: objects, records, users and tokens, bulk import and export."""

__version__ = "0.1.0"
